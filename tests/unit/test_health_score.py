"""The health score an operator's probe acts on: a dead feed, decision task or store fails it,
a side part's trouble only lowers it; every ceiling says why."""

import pytest

from paper_trader.control.health import (
    HealthLevel,
    HealthLimit,
    assess_health,
    health_level,
    health_score,
)
from paper_trader.domain import ComponentHealth, HealthStatus

OK, DEGRADED, CRITICAL = HealthStatus.OK, HealthStatus.DEGRADED, HealthStatus.CRITICAL
# What a live daemon reports, all well (monitor's own parts included).
DAEMON = (
    "supervisor", "storage_writer", "event_recorder", "decision_engine", "data_quality",
    "predictor", "trader", "features", "market_feed", "model_lifecycle", "trade_files",
    "control_socket", "notifier", "http", "loop_lag", "memory",
)  # fmt: skip


def daemon(**statuses: HealthStatus) -> list[ComponentHealth]:
    """Return the daemon's components, each OK unless ``statuses`` says otherwise."""
    return [
        ComponentHealth(component=name, status=statuses.get(name, OK), detail=f"{name} says")
        for name in DAEMON
    ]


def symbols(*statuses: HealthStatus) -> list[ComponentHealth]:
    """Return one freshness component per status, for symbols S0, S1, ..."""
    return [
        ComponentHealth(component=f"feed:S{i}", status=s, detail=f"S{i} {s.label}")
        for i, s in enumerate(statuses)
    ]


def level(components: list[ComponentHealth]) -> HealthLevel:
    """Return the level of the components' score."""
    return health_level(health_score(components))


def test_all_ok_is_100_and_no_components_is_100() -> None:
    """Nothing wrong: Excellent, no ceiling."""
    assert assess_health(daemon()).score == 100
    assert assess_health(daemon()).limits == ()
    assert health_score([]) == 100


@pytest.mark.parametrize("vital", ["market_feed", "decision_engine", "storage_writer"])
def test_a_critical_vital_component_makes_the_level_critical(vital: str) -> None:
    """The feed dead, the decision task stuck or storage failing: below 40 whatever the rest."""
    assessed = assess_health(daemon(**{vital: CRITICAL}))
    assert assessed.score == 39
    assert health_level(assessed.score) is HealthLevel.CRITICAL
    [limit] = assessed.limits
    assert limit == HealthLimit(
        component=vital, status=CRITICAL, at_most=39, detail=f"{vital} says"
    )
    assert limit.reason == (
        f"{vital} critical ({vital} says): a vital component, so the score is at most 39"
    )


def test_a_stale_heartbeat_is_critical_too() -> None:
    """The monitor's decision_loop component (no progress) is vital."""
    stalled = [*daemon(), ComponentHealth(component="decision_loop", status=CRITICAL)]
    assert level(stalled) is HealthLevel.CRITICAL


def test_a_degraded_vital_component_holds_the_level_at_fair_still_serving() -> None:
    """A feed reconnecting or a filling write queue: at most Fair, so /health stays 200."""
    assessed = assess_health(daemon(market_feed=DEGRADED))
    assert assessed.score == 74
    assert health_level(assessed.score).is_serving
    assert [limit.at_most for limit in assessed.limits] == [74]


def test_a_critical_core_component_is_poor_and_an_auxiliary_one_fair() -> None:
    """A crash loop fails the probe; a broken side channel lowers the score only to Fair."""
    assert level(daemon(supervisor=CRITICAL)) is HealthLevel.POOR
    assert not HealthLevel.POOR.is_serving
    assert level(daemon(notifier=CRITICAL)) is HealthLevel.FAIR


def test_degraded_side_parts_lower_the_score_less_than_core_ones() -> None:
    """Weights: an auxiliary part counts once, a core part twice, a vital part three times."""
    assert health_score(daemon(http=DEGRADED)) > health_score(daemon(predictor=DEGRADED))
    assert level(daemon(http=DEGRADED)) is HealthLevel.EXCELLENT
    assert level(daemon(predictor=DEGRADED, trader=DEGRADED)) is HealthLevel.EXCELLENT


def test_every_symbol_stale_is_critical_with_each_reason() -> None:
    """Candles of no symbol arrive: Critical, the symbols named in the one ceiling."""
    assessed = assess_health([*daemon(), *symbols(CRITICAL, CRITICAL)])
    assert health_level(assessed.score) is HealthLevel.CRITICAL
    [limit] = assessed.limits
    assert (limit.component, limit.status, limit.at_most) == ("feed:*", CRITICAL, 39)
    assert limit.detail == "every symbol stale: S0: S0 critical; S1: S1 critical"


def test_some_symbols_stale_hold_the_level_at_fair() -> None:
    """One symbol of two stale, the other flowing: at most Fair, still serving."""
    assessed = assess_health([*daemon(), *symbols(CRITICAL, OK)])
    assert assessed.score == 74
    [limit] = assessed.limits
    assert limit.status is DEGRADED
    assert limit.detail == "1 of 2 late or stale: S0: S0 critical"


def test_many_symbols_weigh_together_like_one_vital_component() -> None:
    """A hundred fresh symbols do not dilute the rest: one degraded core part counts alike."""
    few = health_score([*daemon(predictor=DEGRADED), *symbols(OK)])
    many = health_score([*daemon(predictor=DEGRADED), *symbols(*[OK] * 100)])
    assert few == many


def test_the_lowest_ceiling_comes_first() -> None:
    """Several ceilings: all listed, lowest first; the score obeys the lowest."""
    assessed = assess_health(daemon(notifier=CRITICAL, storage_writer=CRITICAL, trader=CRITICAL))
    assert [limit.at_most for limit in assessed.limits] == [39, 59, 74]
    assert assessed.limits[0].component == "storage_writer"
    assert assessed.score == 39


def test_unknown_components_count_as_auxiliary() -> None:
    """A part the table does not name weighs 1, and its critical status caps at Fair."""
    parts = [ComponentHealth(component="status_feed", status=CRITICAL)]
    assert assess_health(parts).limits[0].at_most == 74
    assert health_score(parts) == 0
