"""Rolling returns per symbol and their correlation, as the entry correlation limit uses them."""

import random
from collections.abc import Sequence
from decimal import Decimal

import pytest
from fakes.reference_monitor import ReferenceReturnHistory
from fakes.trading import held_position

from paper_trader.domain.trading import Position, Rejection, Side
from paper_trader.risk.config import LimitsConfig
from paper_trader.risk.correlation import MIN_COMMON_RETURNS, ReturnHistory
from paper_trader.risk.limits import PortfolioView, screen_entry

MINUTE = 60_000
RETURNS = ["0.01", "-0.02", "0.015", "0.005", "-0.01", "0.02", "-0.005", "0.012", "-0.018", "0.007"]


def closes(returns: Sequence[str], start: str = "100") -> list[Decimal]:
    """Return the closes that start at ``start`` and move by ``returns``."""
    prices = [Decimal(start)]
    for change in returns:
        prices.append(prices[-1] * (1 + Decimal(change)))
    return prices


def feed(history: ReturnHistory, symbol: str, prices: Sequence[Decimal], first: int = 0) -> None:
    """Feed one close per minute, the first at minute ``first``."""
    for i, price in enumerate(prices):
        history.on_close(symbol, (first + i) * MINUTE, price)


def negated(returns: Sequence[str]) -> list[str]:
    """Return the opposite moves."""
    return [str(-Decimal(change)) for change in returns]


def screen(history: ReturnHistory, side: Side, position: Position) -> Rejection | None:
    """Screen an entry in SOL-USDT on ``side`` against one held position."""
    return screen_entry(
        LimitsConfig(allow_short=True, correlation_limit=0.7),
        symbol="SOL-USDT",
        side=side,
        confidence=0.5,
        view=PortfolioView(
            equity=Decimal(10000),
            cash=Decimal(9900),
            positions={position.symbol: position},
            marks={position.symbol: Decimal(100)},
        ),
        correlation=history.correlation,
    )


def test_perfectly_correlated_series_correlate_at_one() -> None:
    """Closes twice as high make the very same returns: correlation 1, and a long is refused."""
    history = ReturnHistory(10)
    feed(history, "SOL-USDT", closes(RETURNS))
    feed(history, "ETH-USDT", [price * 2 for price in closes(RETURNS)])
    assert history.correlation("SOL-USDT", "ETH-USDT") == pytest.approx(1.0, abs=1e-12)
    result = screen(history, Side.LONG, held_position("ETH-USDT", Side.LONG))
    assert result is not None
    assert (result.rule, result.limit) == ("correlation", 0.7)
    assert result.observed == pytest.approx(1.0)


def test_anti_correlated_series_correlate_at_minus_one() -> None:
    """Opposite moves correlate at -1 in both orders of the pair."""
    history = ReturnHistory(10)
    feed(history, "SOL-USDT", closes(RETURNS))
    feed(history, "ETH-USDT", closes(negated(RETURNS)))
    assert history.correlation("SOL-USDT", "ETH-USDT") == pytest.approx(-1.0, abs=1e-12)
    assert history.correlation("ETH-USDT", "SOL-USDT") == pytest.approx(-1.0, abs=1e-12)


def test_anti_correlated_long_against_a_held_short_is_refused() -> None:
    """Long SOL while short an opposite mover is the same bet twice: effective +1."""
    history = ReturnHistory(10)
    feed(history, "SOL-USDT", closes(RETURNS))
    feed(history, "ETH-USDT", closes(negated(RETURNS)))
    result = screen(history, Side.LONG, held_position("ETH-USDT", Side.SHORT))
    assert result is not None
    assert result.rule == "correlation"
    assert result.observed == pytest.approx(1.0)
    assert "(held short, so 1 for a long) above the limit 0.7" in result.detail


def test_anti_correlated_long_against_a_held_long_is_a_hedge() -> None:
    """Long SOL while long an opposite mover hedges it: effective -1, allowed."""
    history = ReturnHistory(10)
    feed(history, "SOL-USDT", closes(RETURNS))
    feed(history, "ETH-USDT", closes(negated(RETURNS)))
    assert screen(history, Side.LONG, held_position("ETH-USDT", Side.LONG)) is None


def test_correlation_is_pearson_on_a_hand_checked_pair() -> None:
    """A hand-checked pair: returns (1, 2, 3, 4) % against (2, 1, 4, 3) % correlate at 0.6."""
    history = ReturnHistory(4)
    feed(history, "A", closes(["0.01", "0.02", "0.03", "0.04"]))
    feed(history, "B", closes(["0.02", "0.01", "0.04", "0.03"]))
    assert history.correlation("A", "B") == pytest.approx(0.6, abs=1e-12)


def test_too_little_overlap_is_unknown_and_the_entry_is_allowed() -> None:
    """Window 10 needs 5 common candle times; 4 in common gives None and no rejection."""
    history = ReturnHistory(10)
    feed(history, "SOL-USDT", closes(RETURNS))
    feed(history, "ETH-USDT", closes(RETURNS[:4]), first=6)
    assert history.correlation("SOL-USDT", "ETH-USDT") is None
    assert screen(history, Side.LONG, held_position("ETH-USDT", Side.LONG)) is None


def test_half_the_window_in_common_is_enough() -> None:
    """Window 10 and exactly 5 common candle times (minutes 6 to 10) give a correlation."""
    history = ReturnHistory(10)
    feed(history, "SOL-USDT", closes(RETURNS))
    feed(history, "ETH-USDT", closes(RETURNS[5:]), first=5)
    assert history.correlation("SOL-USDT", "ETH-USDT") is not None


def test_small_windows_still_need_three_common_returns() -> None:
    """Window 4 halves to 2, but two points always correlate at ±1: at least 3 are needed."""
    history = ReturnHistory(4)
    feed(history, "A", closes(["0.01", "0.02"]))
    feed(history, "B", closes(["0.02", "0.01"]))
    assert history.correlation("A", "B") is None
    history.on_close("A", 3 * MINUTE, Decimal(100))
    history.on_close("B", 3 * MINUTE, Decimal(100))
    assert history.correlation("A", "B") is not None


def test_returns_are_aligned_by_candle_time() -> None:
    """B misses minute 3, where A did not move: the times both have carry the same returns."""
    history = ReturnHistory(10)
    a_prices = closes(["0.01", "0.02", "0", "0.04", "0.05", "0.06"])
    feed(history, "A", a_prices)
    for minute, price in enumerate(a_prices):
        if minute != 3:
            history.on_close("B", minute * MINUTE, price)
    # Common times 1, 2, 4, 5, 6; by position B's five returns would meet A's last five.
    assert history.correlation("A", "B") == pytest.approx(1.0, abs=1e-12)


def test_only_the_last_window_returns_are_kept() -> None:
    """Ten opposite moves then five equal ones: window 5 sees only the equal ones."""
    history = ReturnHistory(5)
    feed(history, "A", closes(RETURNS + RETURNS[:5]))
    feed(history, "B", closes(negated(RETURNS) + RETURNS[:5]))
    assert history.correlation("A", "B") == pytest.approx(1.0, abs=1e-12)


def test_zero_variance_is_unknown() -> None:
    """A flat series has no correlation with anything."""
    history = ReturnHistory(10)
    feed(history, "A", closes(RETURNS))
    feed(history, "FLAT", [Decimal("1.1")] * 11)
    assert history.correlation("A", "FLAT") is None
    assert history.correlation("FLAT", "A") is None


def test_unknown_symbols_are_unknown() -> None:
    """A symbol never seen, or seen once (no return yet), has no correlation."""
    history = ReturnHistory(10)
    feed(history, "A", closes(RETURNS))
    history.on_close("ONCE", 0, Decimal(5))
    assert history.correlation("A", "NEVER") is None
    assert history.correlation("A", "ONCE") is None


def test_duplicate_and_stale_closes_are_ignored() -> None:
    """A repeated or older candle time adds no return (a bogus 0 % would distort the series)."""
    history = ReturnHistory(10)
    feed(history, "A", closes(RETURNS))
    feed(history, "B", closes(RETURNS))
    history.on_close("B", 10 * MINUTE, Decimal(1))
    history.on_close("B", 4 * MINUTE, Decimal(1))
    history.on_close("B", 11 * MINUTE, closes(RETURNS)[-1] * Decimal("1.03"))
    history.on_close("A", 11 * MINUTE, closes(RETURNS)[-1] * Decimal("1.03"))
    assert history.correlation("A", "B") == pytest.approx(1.0, abs=1e-12)


def test_forget_drops_returns_and_the_last_close() -> None:
    """After forget B knows nothing; its next close starts a fresh series with no return."""
    history = ReturnHistory(4)
    feed(history, "A", closes(RETURNS[:4]))
    feed(history, "B", closes(negated(RETURNS[:4])))
    assert history.correlation("A", "B") == pytest.approx(-1.0, abs=1e-12)
    history.forget("B")
    assert history.correlation("A", "B") is None
    fresh = closes(["0.01", "-0.02", "0.03"], start="1")
    feed(history, "A", fresh, first=20)
    feed(history, "B", fresh, first=20)
    # A also has a return at minute 20 (from its old close); B must not, or the pair differs.
    assert history.correlation("A", "B") == pytest.approx(1.0, abs=1e-12)


def test_window_must_be_positive() -> None:
    """A window of 0 is a programming error."""
    with pytest.raises(ValueError, match="at least 1"):
        ReturnHistory(0)


def _random_history(
    seed: int, window: int, gapped: tuple[str, ...] | None = None
) -> tuple[ReturnHistory, ReferenceReturnHistory, list[str]]:
    """Feed both histories the same closes: gaps (in ``gapped``, default every symbol), late
    starts, flat stretches, stale repeats."""
    rng = random.Random(seed)
    symbols = [f"S{i}" for i in range(12)]
    new, old = ReturnHistory(window), ReferenceReturnHistory(window)
    prices = {s: Decimal(100 + i) for i, s in enumerate(symbols)}
    for minute in range(3 * window):
        for i, symbol in enumerate(symbols):
            gaps = gapped is None or symbol in gapped
            if minute < i * window // 6 or (gaps and rng.random() < 0.15):
                continue  # a late start, a gap
            if symbol not in ("S3", "S7") or minute < window:  # S3 and S7 go flat
                prices[symbol] *= 1 + Decimal(rng.randint(-30, 30)) / 1000
            for history in (new, old):
                history.on_close(symbol, minute * MINUTE, prices[symbol])
                if rng.random() < 0.05:  # a duplicate or stale close is ignored
                    history.on_close(symbol, (minute - 1) * MINUTE, prices[symbol])
    return new, old, symbols


@pytest.mark.parametrize(
    ("seed", "window", "gapped"),
    [
        (0, 10, None),
        (1, 6, None),
        (2, 40, None),
        (3, 1, None),
        (4, 7, None),
        (5, 10, ()),  # the steady state: full rows, the same candle times everywhere
        (6, 40, ()),
        (7, 3, ()),
        (8, 20, ("S2", "S9")),  # most rows alike, two not: both steps in one call
    ],
)
def test_correlations_with_many_equal_the_pairwise_reference(
    seed: int, window: int, gapped: tuple[str, ...] | None
) -> None:
    """One step against every other symbol gives the old pairwise values (to 1e-12) and the
    same None where too few times are shared or a side is constant."""
    new, old, symbols = _random_history(seed, window, gapped)
    nones = pairs = 0
    for symbol in [*symbols, "NEVER"]:
        others = [s for s in [*symbols, "NEVER"] if s != symbol]
        got = new.correlations(symbol, others)
        for other, value in zip(others, got, strict=True):
            pairs += 1
            expected = old.correlation(symbol, other)
            if expected is None:
                nones += 1
                assert value is None, (symbol, other)
            else:
                assert value == pytest.approx(expected, abs=1e-12), (symbol, other)
            pairwise = new.correlation(symbol, other)
            assert pairwise == expected  # the pairwise path is the old computation, exactly
    # Below three returns in the window nothing is ever measured; otherwise some pairs are.
    assert nones == pairs if window < MIN_COMMON_RETURNS else 0 < nones < pairs


def test_a_forgotten_symbol_frees_its_row_for_another() -> None:
    """After forget, a symbol has no correlation; a newcomer reuses the row from scratch."""
    history = ReturnHistory(4)
    for symbol in [f"S{i}" for i in range(20)]:  # more than the first allocation of rows
        feed(history, symbol, closes(RETURNS[:5]))
    assert history.correlation("S0", "S19") == pytest.approx(1.0, abs=1e-12)
    history.forget("S0")
    assert history.correlation("S0", "S1") is None
    feed(history, "NEW", closes(negated(RETURNS[:5])))
    assert history.correlation("NEW", "S1") == pytest.approx(-1.0, abs=1e-12)
    assert history.correlation("S1", "NEW") == pytest.approx(-1.0, abs=1e-12)


def test_the_screen_with_many_decides_as_pair_by_pair() -> None:
    """screen_entry with correlations= refuses exactly what it refuses with correlation=."""
    new, old, symbols = _random_history(5, 10)
    refusals = 0
    for candidate in symbols:
        for side in (Side.LONG, Side.SHORT):
            held = {
                s: held_position(s, Side.LONG if i % 2 else Side.SHORT)
                for i, s in enumerate(symbols)
                if s != candidate
            }
            view = PortfolioView(
                equity=Decimal(10000),
                cash=Decimal(9900),
                positions=held,
                marks=dict.fromkeys(held, Decimal(100)),
            )
            config = LimitsConfig(allow_short=True, correlation_limit=0.3, max_positions=20)
            common = {"symbol": candidate, "side": side, "confidence": 0.5, "view": view}
            got = screen_entry(config, correlations=new.correlations, **common)
            expected = screen_entry(config, correlation=old.correlation, **common)
            if expected is None:
                assert got is None
                continue
            refusals += 1
            assert got is not None
            assert (got.rule, got.detail, got.limit) == (
                expected.rule,
                expected.detail,
                expected.limit,
            )
            assert got.observed == pytest.approx(expected.observed, abs=1e-12)
    assert 0 < refusals < 2 * len(symbols)
