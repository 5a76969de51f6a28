"""Entry limits: the screen before sizing, and the caps that fit a sized quantity."""

from collections.abc import Mapping
from decimal import Decimal

import pytest
from fakes.trading import held_position
from hypothesis import event, given, settings
from hypothesis import strategies as st

from paper_trader.domain.trading import Position, Rejection, Side
from paper_trader.risk.config import LimitsConfig
from paper_trader.risk.limits import (
    Approval,
    PortfolioView,
    entry_spend,
    fit_quantity,
    screen_entry,
)
from paper_trader.risk.sizing import QUANTITY_STEP, round_quantity

LIMITS = LimitsConfig(
    max_positions=3,
    max_position_size=0.25,
    max_total_exposure=0.75,
    min_notional=Decimal(10),
    min_confidence=0.05,
    correlation_limit=0.7,
    allow_short=True,
)
FEE = Decimal("0.001")
D0 = Decimal(0)


def view(
    *positions: Position,
    equity: str = "10000",
    cash: str = "10000",
    marks: Mapping[str, str] | None = None,
) -> PortfolioView:
    """Return a portfolio view; marks default to each position's entry price."""
    marked = {p.symbol: p.entry_price for p in positions}
    marked.update({symbol: Decimal(mark) for symbol, mark in (marks or {}).items()})
    return PortfolioView(
        equity=Decimal(equity),
        cash=Decimal(cash),
        positions={p.symbol: p for p in positions},
        marks=marked,
    )


def no_correlation(a: str, b: str) -> float | None:
    """Know nothing about any pair."""
    return None


def screen(
    *,
    symbol: str = "SOL-USDT",
    side: Side = Side.LONG,
    confidence: float = 0.5,
    portfolio: PortfolioView | None = None,
    config: LimitsConfig = LIMITS,
    correlations: Mapping[str, float | None] | None = None,
) -> Rejection | None:
    """Screen an entry; ``correlations`` maps each held symbol to its correlation."""
    known = correlations or {}

    def correlation(a: str, b: str) -> float | None:
        assert a == symbol
        return known.get(b)

    return screen_entry(
        config,
        symbol=symbol,
        side=side,
        confidence=confidence,
        view=portfolio or view(),
        correlation=correlation,
    )


def fit(
    quantity: str,
    price: str,
    portfolio: PortfolioView,
    *,
    side: Side = Side.LONG,
    fee_rate: Decimal = FEE,
) -> Approval | Rejection:
    """Fit a long (unless told) of ``quantity`` at ``price`` with a 0.1 % fee."""
    return fit_quantity(
        LIMITS,
        side=side,
        quantity=Decimal(quantity),
        price=Decimal(price),
        fee_rate=fee_rate,
        view=portfolio,
    )


BTC_LONG = held_position("BTC-USDT", Side.LONG, "0.1", "20000")
ETH_SHORT = held_position("ETH-USDT", Side.SHORT, "2", "1400")


def test_screen_passes_an_ordinary_entry() -> None:
    """A confident long with room and no correlation data passes."""
    assert screen(portfolio=view(BTC_LONG)) is None


def test_short_is_refused_when_shorts_are_disabled() -> None:
    """allow_short false: rule short_not_allowed, before any other rule."""
    config = LimitsConfig(allow_short=False)
    assert screen(side=Side.SHORT, confidence=0.0, config=config) == Rejection(
        rule="short_not_allowed", detail="short entries are disabled"
    )


def test_short_passes_when_shorts_are_allowed() -> None:
    """allow_short true lets a short through the screen."""
    assert screen(side=Side.SHORT) is None


def test_low_confidence_is_refused() -> None:
    """Confidence 0.03 under the 0.05 minimum: observed 0.03, limit 0.05."""
    assert screen(confidence=0.03) == Rejection(
        rule="min_confidence",
        detail="confidence 0.03 below the minimum 0.05",
        observed=0.03,
        limit=0.05,
    )


def test_confidence_at_the_minimum_passes() -> None:
    """The minimum itself is enough."""
    assert screen(confidence=0.05) is None


def test_second_position_in_a_symbol_is_refused() -> None:
    """One position per symbol: a held BTC long refuses another BTC entry."""
    assert screen(symbol="BTC-USDT", portfolio=view(BTC_LONG)) == Rejection(
        rule="position_open", detail="BTC-USDT already has an open long position"
    )


def test_entry_beyond_max_positions_is_refused() -> None:
    """Three positions held with a maximum of 3: observed 3, limit 3."""
    held = view(BTC_LONG, ETH_SHORT, held_position("XRP-USDT", Side.LONG, "100", "0.5"))
    assert screen(portfolio=held) == Rejection(
        rule="max_positions",
        detail="3 positions open, the maximum is 3",
        observed=3.0,
        limit=3.0,
    )


def test_correlated_entry_on_the_same_side_is_refused() -> None:
    """0.83 with a held long, entering long: above 0.7."""
    assert screen(portfolio=view(BTC_LONG), correlations={"BTC-USDT": 0.83}) == Rejection(
        rule="correlation",
        detail="correlation 0.83 with BTC-USDT above the limit 0.7",
        observed=0.83,
        limit=0.7,
    )


def test_anti_correlated_entry_against_a_held_short_is_refused() -> None:
    """-0.91 with a held short, entering long: the same bet twice, effective 0.91."""
    assert screen(portfolio=view(ETH_SHORT), correlations={"ETH-USDT": -0.91}) == Rejection(
        rule="correlation",
        detail="correlation -0.91 with ETH-USDT (held short, so 0.91 for a long) "
        "above the limit 0.7",
        observed=0.91,
        limit=0.7,
    )


def test_correlated_entry_against_a_held_short_is_a_hedge_and_passes() -> None:
    """0.9 with a held short, entering long, is effective -0.9: allowed."""
    assert screen(portfolio=view(ETH_SHORT), correlations={"ETH-USDT": 0.9}) is None


def test_correlation_at_the_limit_passes() -> None:
    """Only a correlation above the limit refuses; 0.7 itself passes."""
    assert screen(portfolio=view(BTC_LONG), correlations={"BTC-USDT": 0.7}) is None


def test_unknown_correlation_is_not_applied() -> None:
    """None (not enough common returns) skips the pair."""
    assert screen(portfolio=view(BTC_LONG), correlations={"BTC-USDT": None}) is None


def test_correlation_checks_held_symbols_in_sorted_order() -> None:
    """Both held symbols breach; the first by symbol (BTC before ETH) is reported."""
    result = screen(
        portfolio=view(ETH_SHORT, BTC_LONG),
        correlations={"ETH-USDT": -0.95, "BTC-USDT": 0.8},
    )
    assert result is not None
    assert (result.rule, result.observed) == ("correlation", 0.8)


def test_quantity_within_every_cap_is_approved_unchanged() -> None:
    """1 at 2000 is within 2500, 7500 and the cash: approved as asked."""
    assert fit("1", "2000", view()) == Approval(
        quantity=Decimal(1), notional=Decimal(2000), capped_by=()
    )


def test_max_position_size_caps_the_notional() -> None:
    """2 at 2000 = 4000 is cut to 0.25 x 10000 = 2500, i.e. 1.25."""
    assert fit("2", "2000", view()) == Approval(
        quantity=Decimal("1.25"), notional=Decimal(2500), capped_by=("max_position_size",)
    )


def test_total_exposure_caps_at_marks() -> None:
    """Held 0.1 BTC at mark 30000 and 2 ETH short at mark 1500: 6000 of 7500, 1500 left: 15."""
    held = view(BTC_LONG, ETH_SHORT, marks={"BTC-USDT": "30000", "ETH-USDT": "1500"})
    assert fit("20", "100", held) == Approval(
        quantity=Decimal(15), notional=Decimal(1500), capped_by=("max_total_exposure",)
    )


def test_position_without_mark_is_valued_at_entry() -> None:
    """No mark for BTC: 0.1 x 20000 = 2000 exposure, 5500 left of 7500, so 20 fits."""
    held = PortfolioView(
        equity=Decimal(10000), cash=Decimal(10000), positions={"BTC-USDT": BTC_LONG}, marks={}
    )
    assert fit("20", "100", held) == Approval(
        quantity=Decimal(20), notional=Decimal(2000), capped_by=()
    )


def test_total_exposure_without_room_refuses() -> None:
    """Exposure 7600 (0.1 at mark 76000) over the 7500 limit: rule max_total_exposure."""
    held = view(BTC_LONG, marks={"BTC-USDT": "76000"})
    assert fit("1", "100", held) == Rejection(
        rule="max_total_exposure",
        detail="exposure 7600 against the limit 7500 (0.75 of equity 10000) leaves no room "
        "for the smallest quantity 0.00000001",
        observed=7600.0,
        limit=7500.0,
    )


def test_cash_caps_notional_plus_fee() -> None:
    """Cash 1001 at 100 plus 0.1 % fee buys exactly 1001 / 100.1 = 10."""
    assert fit("20", "100", view(cash="1001")) == Approval(
        quantity=Decimal(10), notional=Decimal(1000), capped_by=("cash",)
    )


def test_no_cash_refuses() -> None:
    """Cash 0: rule cash, the requested cost 2002 against the limit 0."""
    assert fit("20", "100", view(cash="0")) == Rejection(
        rule="cash",
        detail="free cash 0 at price 100 plus fee rate 0.001 leaves no room for the smallest "
        "quantity 0.00000001",
        observed=2002.0,
        limit=0.0,
    )


def test_cash_cap_fits_the_fee_as_the_fill_rounds_it_up() -> None:
    """1.23456789 at 1873.37 with a 0.26 % fee costs 2318.81573445433218 exactly, but the
    fill charges the fee rounded up to 1e-12 (6.013286365033): one step less fits."""
    cash = "2318.81573445433218"
    result = fit("1.3", "1873.37", view(cash=cash), fee_rate=Decimal("0.0026"))
    assert isinstance(result, Approval)
    assert (result.quantity, result.capped_by) == (Decimal("1.23456788"), ("cash",))
    spent = entry_spend(Side.LONG, result.quantity, Decimal("1873.37"), Decimal("0.0026"), D0)
    assert spent <= Decimal(cash)
    over = entry_spend(Side.LONG, Decimal("1.23456789"), Decimal("1873.37"), Decimal("0.0026"), D0)
    assert over > Decimal(cash)


def test_a_short_takes_its_margin_and_fee_out_of_free_cash() -> None:
    """A short holds half its notional beyond the proceeds: 1001 / (100 * 0.501) steps."""
    result = fit("20", "100", view(cash="1001"), side=Side.SHORT)
    assert result == Approval(
        quantity=Decimal("19.98003992"), notional=Decimal("1998.003992"), capped_by=("cash",)
    )
    assert entry_spend(
        Side.SHORT, Decimal("19.98003992"), Decimal(100), FEE, Decimal("0.5")
    ) == Decimal("1000.999999992")


def test_a_short_without_free_cash_is_refused_with_its_margin() -> None:
    """Free cash 0: the short's margin and fee cannot be held."""
    result = fit("20", "100", view(cash="0"), side=Side.SHORT)
    assert isinstance(result, Rejection)
    assert (result.rule, result.observed) == ("cash", 1002.0)
    assert result.detail.startswith(
        "free cash 0 at price 100 for a short's margin 0.5 plus fee rate 0.001 leaves no room"
    )


def test_caps_apply_in_order_and_are_all_recorded() -> None:
    """50 at 100: size cap 25, exposure room 1500 gives 15, cash 1001 gives 10."""
    held = view(BTC_LONG, ETH_SHORT, cash="1001", marks={"BTC-USDT": "30000", "ETH-USDT": "1500"})
    assert fit("50", "100", held) == Approval(
        quantity=Decimal(10),
        notional=Decimal(1000),
        capped_by=("max_position_size", "max_total_exposure", "cash"),
    )


def test_quantity_is_rounded_down_to_the_step() -> None:
    """1.123456789 becomes 1.12345678; rounding is not a cap."""
    result = fit("1.123456789", "100", view())
    assert result == Approval(
        quantity=Decimal("1.12345678"), notional=Decimal("112.345678"), capped_by=()
    )


def test_notional_below_minimum_is_refused_with_the_shortfall() -> None:
    """0.0712 at 100 is 7.12, short of 10 by 2.88."""
    assert fit("0.0712", "100", view()) == Rejection(
        rule="min_notional",
        detail="notional 7.12 below the minimum 10 (short by 2.88)",
        observed=7.12,
        limit=10.0,
    )


def test_notional_capped_below_minimum_names_the_caps() -> None:
    """Cash 7 caps 1 at 100 to 0.06993006 (6.993006): below 10, after capping by cash."""
    result = fit("1", "100", view(cash="7"))
    assert isinstance(result, Rejection)
    assert result.rule == "min_notional"
    assert (
        result.detail == "notional 6.99 below the minimum 10 (short by 3.01) after capping by cash"
    )
    assert result.observed == 6.993006


@pytest.mark.parametrize(
    ("equity", "detail", "observed"),
    [("0", "equity 0 is not positive", 0.0), ("-250.5", "equity -250.5 is not positive", -250.5)],
)
def test_non_positive_equity_is_refused(equity: str, detail: str, observed: float) -> None:
    """No equity, no entry: rule equity."""
    assert fit("1", "100", view(equity=equity)) == Rejection(
        rule="equity", detail=detail, observed=observed, limit=0.0
    )


@pytest.mark.parametrize(
    ("quantity", "detail", "observed", "limit"),
    [
        ("0", "quantity 0 is not positive", 0.0, 0.0),
        ("-1", "quantity -1 is not positive", -1.0, 0.0),
        ("0.000000009", "quantity 0.000000009 rounds down to 0 at the step 0.00000001", 9e-9, 1e-8),
    ],
)
def test_quantity_without_a_step_is_refused(
    quantity: str, detail: str, observed: float, limit: float
) -> None:
    """A quantity that is not positive, or below one step, is refused: rule sizing."""
    assert fit(quantity, "100", view()) == Rejection(
        rule="sizing", detail=detail, observed=observed, limit=limit
    )


SIDES = st.sampled_from([Side.LONG, Side.SHORT])
EQUITIES = st.decimals(min_value=Decimal(100), max_value=Decimal(1_000_000), places=2)
PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100_000), places=4)
SHARES = st.decimals(min_value=Decimal(0), max_value=Decimal("1.2"), places=4)
FRACTIONS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1.5"), places=4).map(float)


@st.composite
def portfolios(draw: st.DrawFn) -> PortfolioView:
    """Draw equity, cash and up to five positions, each worth up to half the equity at entry."""
    equity = draw(EQUITIES)
    positions: dict[str, Position] = {}
    marks: dict[str, Decimal] = {}
    for i in range(draw(st.integers(min_value=0, max_value=5))):
        symbol = f"S{i}-USDT"
        entry = draw(PRICES)
        quantity = round_quantity(equity * draw(SHARES) / 2 / entry)
        held = held_position(symbol, draw(SIDES), str(quantity), str(entry))
        positions[symbol] = held
        marks[symbol] = (entry * draw(SHARES) * 2).quantize(Decimal("0.0001"))
    return PortfolioView(
        equity=equity,
        cash=(equity * draw(SHARES)).quantize(Decimal("0.01")),
        positions=positions,
        marks=marks,
    )


@settings(max_examples=400, deadline=None)
@given(
    portfolios(),
    SHARES,
    PRICES,
    st.decimals(min_value=Decimal(0), max_value=Decimal("0.005"), places=6),
    FRACTIONS,
    FRACTIONS,
    st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2),
    SIDES,
    st.decimals(min_value=Decimal("0.05"), max_value=Decimal(3), places=3),
)
def test_an_approval_never_exceeds_any_cap(
    portfolio: PortfolioView,
    share: Decimal,
    price: Decimal,
    fee_rate: Decimal,
    size: float,
    exposure: float,
    min_notional: Decimal,
    side: Side,
    margin: Decimal,
) -> None:
    """Whatever the portfolio, an approved entry fits every cap and is whole steps; what the
    fill takes out of free cash, fee rounded up, never exceeds it, and one step more would."""
    quantity = max(QUANTITY_STEP, round_quantity(portfolio.equity * share / price))
    config = LimitsConfig(
        max_position_size=size,
        max_total_exposure=exposure,
        min_notional=min_notional,
        short_margin=margin,
    )
    result = fit_quantity(
        config, side=side, quantity=quantity, price=price, fee_rate=fee_rate, view=portfolio
    )
    event(
        result.rule if isinstance(result, Rejection) else f"approved, capped by {result.capped_by}"
    )
    if isinstance(result, Rejection):
        assert result.rule in {"max_position_size", "max_total_exposure", "cash", "min_notional"}
        return
    held = sum(
        (abs(p.value(portfolio.marks[s])) for s, p in portfolio.positions.items()), Decimal(0)
    )
    equity = portfolio.equity
    assert 0 < result.quantity <= quantity
    assert result.quantity % QUANTITY_STEP == 0
    assert result.notional == result.quantity * price
    assert result.notional <= Decimal(str(size)) * equity
    assert held + result.notional <= Decimal(str(exposure)) * equity
    assert entry_spend(side, result.quantity, price, fee_rate, margin) <= portfolio.cash
    if "cash" in result.capped_by:
        more = result.quantity + QUANTITY_STEP
        assert entry_spend(side, more, price, fee_rate, margin) > portfolio.cash
    assert result.notional >= min_notional
