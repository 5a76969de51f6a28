"""The pure parts of the operator's reports: period boundaries, period rows, historical VaR,
the health score."""

from decimal import Decimal

import pytest

from paper_trader.control.reports import PeriodUnit, period_rows, period_starts
from paper_trader.control.risk_report import historical_var, returns_of
from paper_trader.control.system import health_score
from paper_trader.domain import ComponentHealth, HealthStatus
from paper_trader.domain.trading import DAY_MS, EquitySnapshot

WEDNESDAY_NOON = 19_676 * DAY_MS + DAY_MS // 2


def snap(t: int, equity: str) -> EquitySnapshot:
    e = Decimal(equity)
    return EquitySnapshot(
        candle_time_ms=t, cash=e, positions_value=Decimal(0), equity=e, peak_equity=e,
        open_positions=0,
    )  # fmt: skip


def test_days_weeks_and_months_start_where_the_calendar_says() -> None:
    """UTC days, weeks from Monday, calendar months; one more start closes the last period."""
    assert period_starts(PeriodUnit.DAY, WEDNESDAY_NOON, 2) == [
        19_675 * DAY_MS, 19_676 * DAY_MS, 19_677 * DAY_MS
    ]  # fmt: skip
    assert period_starts(PeriodUnit.WEEK, WEDNESDAY_NOON, 1) == [19_674 * DAY_MS, 19_681 * DAY_MS]
    months = period_starts(PeriodUnit.MONTH, WEDNESDAY_NOON, 2)
    assert months == [1_696_118_400_000, 1_698_796_800_000, 1_701_388_800_000]  # Oct, Nov, Dec


def test_period_rows_take_the_equity_at_each_boundary() -> None:
    """A period starts from the last close before it and ends at its own last close."""
    starts = [0, 10, 20, 30]
    closes = [snap(5, "100"), snap(15, "110"), snap(18, "105")]
    rows = period_rows(starts, closes, [], Decimal(90))
    assert [(r.start_equity, r.end_equity) for r in rows] == [
        (Decimal(90), Decimal(100)),
        (Decimal(100), Decimal(105)),
        (Decimal(105), Decimal(105)),
    ]
    assert rows[1].pnl == Decimal(5)
    assert rows[1].return_pct == Decimal(5)


def test_historical_var_is_the_loss_at_the_fifth_percentile() -> None:
    """Twenty returns from -10 % to +9 %: the 5 % quantile interpolates between -10 and -9."""
    returns = [i / 100 for i in range(-10, 10)]
    assert historical_var(returns) == pytest.approx(0.0905)
    assert historical_var(returns[:5]) is None
    assert historical_var([0.01] * 20) == 0.0


def test_returns_skip_a_non_positive_base() -> None:
    """Simple returns between consecutive equities."""
    assert returns_of([Decimal(100), Decimal(110), Decimal(99)]) == pytest.approx([0.1, -0.1])


def test_health_score_is_the_mean_of_the_components() -> None:
    """ok 100, degraded 50, critical 0."""

    def c(status: HealthStatus) -> ComponentHealth:
        return ComponentHealth(component="x", status=status)

    assert health_score(()) == 100
    assert health_score((c(HealthStatus.OK), c(HealthStatus.DEGRADED))) == 75
    assert health_score((c(HealthStatus.CRITICAL),)) == 0
