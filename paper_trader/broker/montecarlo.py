"""Monte Carlo of a trading record: what its closed trades could plausibly have added up to.

The closed trades' returns are resampled with replacement (a bootstrap): each run draws as
many trades as the record holds, in a random order and some of them more than once, and
compounds them from the starting equity. Over ``runs`` runs that gives the 5th, 50th and 95th
percentile of the final equity and of the maximum drawdown.

A trade's return is its net PnL as a fraction of the equity it was taken from: the starting
equity plus the net PnL of every trade that closed before it (the realised equity, trade by
trade in the order they closed). Sizing is a fraction of equity, so a trade's PnL scales with
the equity it was sized from; compounded in their own order these fractions give back the
record's realised equity exactly (``TradeReturns`` keeps them as a compact float array:
8 bytes a trade, nothing else of the history). A trade taken after the realised equity fell
to zero or below counts as a total loss. A run's equity never goes below zero: a return
of -100 % or worse ends it there (ruin), and it stays there.

The drawdown is that of the run's equity trade by trade (closed trades only, the starting
equity its first peak), as a fraction of the peak: open positions' swings between the trades
are not in it, so it reads below the mark-to-market drawdown of the equity snapshots.

The draws come from NumPy's PCG64 seeded with the fixed ``SEED``: the same record gives the
same figures, on every run and through every interface (with the same NumPy). Fewer than
``MIN_TRADES`` trades, or no runs, is no simulation (None). The runs are drawn in blocks of
at most ``BLOCK_CELLS`` trades (runs x trades), so memory stays a few MB however long the
record and however many the runs.
"""

import math
from array import array
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from paper_trader.domain.trading import ClosedTrade

SEED = 18  # fixed on purpose: a seed per call would give the same record other figures
RUNS = 1000  # the default of ``MONTE_CARLO_RUNS``
MIN_TRADES = 2  # one trade resampled is that trade again: nothing to learn
BLOCK_CELLS = 1 << 19  # trades drawn at once (runs x trades): ~4 MB per float64 matrix
PERCENTILES = (5.0, 50.0, 95.0)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Percentiles:
    """The 5th, 50th and 95th percentile of a simulated figure (linear interpolation)."""

    p5: float
    p50: float
    p95: float

    def to_json(self) -> dict[str, float | None]:
        """Return the three as JSON values rounded to 6 decimals (None if not finite)."""
        return {"p5": _rounded(self.p5), "p50": _rounded(self.p50), "p95": _rounded(self.p95)}


@dataclass(frozen=True, slots=True, kw_only=True)
class MonteCarlo:
    """The bootstrap of a record's trades (see the module's docstring).

    ``final_equity`` is in the ledger's currency (a simulated figure, so a float, not ledger
    money); ``max_drawdown`` is a fraction of the peak (0.05 is 5 %). ``trades`` is how many
    trades the record holds and each run draws; ``seed`` the generator's seed.
    """

    runs: int
    trades: int
    seed: int
    initial_equity: Decimal
    final_equity: Percentiles
    max_drawdown: Percentiles

    def to_json(self) -> dict[str, object]:
        """Return JSON-ready values: the initial equity as exact text, the rest as numbers."""
        return {
            "runs": self.runs,
            "trades": self.trades,
            "seed": self.seed,
            "initial_equity": format(self.initial_equity, "f"),
            "final_equity": self.final_equity.to_json(),
            "max_drawdown": self.max_drawdown.to_json(),
        }


class TradeReturns:
    """Each closed trade's return on the realised equity before it, fed in closing order."""

    def __init__(self, initial_equity: Decimal) -> None:
        """Start from ``initial_equity`` (the ledger's starting balance)."""
        self.initial_equity = initial_equity
        self.equity = initial_equity  # realised: the start plus the trades' net PnL so far
        self._returns = array("d")

    def add(self, trade: ClosedTrade) -> None:
        """Count the next trade to close (the order matters: each is on the equity before it)."""
        base = self.equity
        self._returns.append(float(trade.net_pnl / base) if base > 0 else -1.0)
        self.equity += trade.net_pnl

    def __len__(self) -> int:
        """Return how many trades were added."""
        return len(self._returns)

    def returns(self) -> Floats:
        """Return the returns so far, in the order the trades closed."""
        return np.frombuffer(self._returns, dtype=np.float64).copy()


def simulate(
    returns: Floats, *, initial_equity: Decimal, runs: int = RUNS, seed: int = SEED
) -> MonteCarlo | None:
    """Return the percentiles of ``runs`` bootstrap runs of ``returns``, or None when there
    is nothing to simulate (``runs`` below 1, fewer than ``MIN_TRADES`` returns).

    ``returns`` are fractions of the equity before each trade (``TradeReturns``). Raise
    ``ValueError`` if ``initial_equity`` is not positive.
    """
    if not initial_equity > 0:
        raise ValueError(f"the initial equity must be positive, not {initial_equity}")
    growth = np.maximum(1.0 + np.asarray(returns, dtype=np.float64), 0.0)
    if runs < 1 or growth.size < MIN_TRADES:
        return None
    growths, drawdowns = _runs(growth, runs, np.random.default_rng(seed))
    start = float(initial_equity)
    return MonteCarlo(
        runs=runs,
        trades=int(growth.size),
        seed=seed,
        initial_equity=initial_equity,
        final_equity=_percentiles(growths * start),
        max_drawdown=_percentiles(drawdowns),
    )


def _runs(growth: Floats, runs: int, rng: np.random.Generator) -> tuple[Floats, Floats]:
    """Return each run's final equity over the start, and its maximum drawdown."""
    count = growth.size
    finals, drawdowns = np.empty(runs), np.empty(runs)
    block = max(1, BLOCK_CELLS // count)
    index = np.int32 if count < 2**31 else np.int64
    for first in range(0, runs, block):
        rows = min(block, runs - first)
        path = growth[rng.integers(0, count, size=(rows, count), dtype=index)]
        np.cumprod(path, axis=1, out=path)  # equity over the start, trade by trade
        peak = np.maximum.accumulate(path, axis=1)
        np.maximum(peak, 1.0, out=peak)  # the starting equity is the first peak
        np.divide(path, peak, out=peak)  # what is left of the peak, at each trade
        finals[first : first + rows] = path[:, -1]
        drawdowns[first : first + rows] = 1.0 - peak.min(axis=1)
    return finals, drawdowns


def _percentiles(values: Floats) -> Percentiles:
    p5, p50, p95 = (float(v) for v in np.percentile(values, PERCENTILES))
    return Percentiles(p5=p5, p50=p50, p95=p95)


def _rounded(value: float) -> float | None:
    # + 0.0 turns a rounded -0.0 into 0.0; infinities and NaN are not JSON.
    return round(value, 6) + 0.0 if math.isfinite(value) else None
