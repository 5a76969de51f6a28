"""The health score: 0-100 from the components' health, and the bands of the user's guide.

A plain mean would let a dead market feed hide among a dozen healthy side parts, so the score
is a weighted mean under ceilings:

* Each component has a role. **Vital** parts, without which nothing is traded — the market feed
  (``market_feed``, and every symbol's candle freshness ``feed:SYMBOL`` taken together), the
  decision task (``decision_engine``, ``decision_loop``) and storage (``storage_writer``) — weigh
  3. **Core** parts, which decide how it is traded — ``predictor``, ``trader``, ``data_quality``,
  ``features``, ``supervisor``, ``model_lifecycle`` — weigh 2. Every other part (notifier,
  Telegram, HTTP, control socket, trade files, loop lag, memory, …) weighs 1.
* A component scores 100 when ok, 50 when degraded, 0 when critical; the symbols' freshness
  shares one vital weight (a hundred symbols do not outweigh the decision task).
* Ceilings, whatever the mean: a vital part critical holds the score at 39 at most (Critical),
  a vital part degraded at 74 (Fair: still serving, never Good); a core part critical at 59
  (Poor); any other part critical at 74. The symbols' freshness counts as critical when every
  symbol is stale, and as degraded when some are late or stale.

Each ceiling that applies is a ``HealthLimit`` with its reason, so ``/health`` says why.
"""

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from paper_trader.domain import ComponentHealth, HealthStatus

SYMBOL_FEED = "feed:"  # the prefix of a symbol's candle-freshness component: feed:BTC-USDT


class Role(enum.StrEnum):
    """How much a component matters to trading."""

    VITAL = "vital"
    CORE = "core"
    AUXILIARY = "auxiliary"


ROLES: dict[str, Role] = {
    "market_feed": Role.VITAL,
    "decision_engine": Role.VITAL,
    "decision_loop": Role.VITAL,
    "storage_writer": Role.VITAL,
    "predictor": Role.CORE,
    "trader": Role.CORE,
    "data_quality": Role.CORE,
    "features": Role.CORE,
    "supervisor": Role.CORE,
    "model_lifecycle": Role.CORE,
}
WEIGHTS = {Role.VITAL: 3.0, Role.CORE: 2.0, Role.AUXILIARY: 1.0}
# The highest score allowed while a component of the role has the status.
CEILINGS: dict[tuple[Role, HealthStatus], int] = {
    (Role.VITAL, HealthStatus.CRITICAL): 39,
    (Role.VITAL, HealthStatus.DEGRADED): 74,
    (Role.CORE, HealthStatus.CRITICAL): 59,
    (Role.AUXILIARY, HealthStatus.CRITICAL): 74,
}
_STATUS_SCORE = {HealthStatus.OK: 100, HealthStatus.DEGRADED: 50, HealthStatus.CRITICAL: 0}


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthLimit:
    """A ceiling on the score: ``component`` (``feed:*`` for the symbols together) is
    ``status``, so the score is ``at_most`` this; ``detail`` is the component's reason."""

    component: str
    status: HealthStatus
    at_most: int
    detail: str

    @property
    def reason(self) -> str:
        """Return the ceiling in one line, for people."""
        role = role_of(self.component).value
        return (
            f"{self.component} {self.status.label} ({self.detail}): "
            f"a {role} component, so the score is at most {self.at_most}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthAssessment:
    """The score and the ceilings that apply to it, lowest first."""

    score: int
    limits: tuple[HealthLimit, ...] = ()


def role_of(component: str) -> Role:
    """Return a component's role (a symbol's freshness is vital; unknown names auxiliary)."""
    if component.startswith(SYMBOL_FEED):
        return Role.VITAL
    return ROLES.get(component, Role.AUXILIARY)


def assess_health(components: Iterable[ComponentHealth]) -> HealthAssessment:
    """Return the weighted mean of the components' scores under their ceilings (100 if none)."""
    parts = tuple(components)
    symbols = tuple(c for c in parts if c.component.startswith(SYMBOL_FEED))
    others = tuple(c for c in parts if not c.component.startswith(SYMBOL_FEED))
    weighted = [(WEIGHTS[role_of(c.component)], _STATUS_SCORE[c.status]) for c in others]
    if symbols:
        share = WEIGHTS[Role.VITAL] / len(symbols)
        weighted += [(share, _STATUS_SCORE[c.status]) for c in symbols]
    total = sum(weight for weight, _ in weighted)
    mean = sum(weight * score for weight, score in weighted) / total if total else 100.0
    limits = [limit for c in others if (limit := _ceiling(c)) is not None]
    symbols_limit = _symbols_ceiling(symbols)
    if symbols_limit is not None:
        limits.append(symbols_limit)
    limits.sort(key=lambda limit: limit.at_most)
    score = min([round(mean), *(limit.at_most for limit in limits)])
    return HealthAssessment(score=score, limits=tuple(limits))


def health_score(components: Iterable[ComponentHealth]) -> int:
    """Return the score of ``assess_health``."""
    return assess_health(components).score


def _ceiling(component: ComponentHealth) -> HealthLimit | None:
    at_most = CEILINGS.get((role_of(component.component), component.status))
    if at_most is None:
        return None
    return HealthLimit(
        component=component.component,
        status=component.status,
        at_most=at_most,
        detail=component.detail,
    )


def _symbols_ceiling(symbols: tuple[ComponentHealth, ...]) -> HealthLimit | None:
    """Return the symbols' ceiling: critical when every one is critical, degraded when any is
    not ok."""
    troubled = [c for c in symbols if c.status is not HealthStatus.OK]
    if not troubled:
        return None
    every = len(troubled) == len(symbols) and all(
        c.status is HealthStatus.CRITICAL for c in troubled
    )
    status = HealthStatus.CRITICAL if every else HealthStatus.DEGRADED
    names = "; ".join(f"{c.component.removeprefix(SYMBOL_FEED)}: {c.detail}" for c in troubled)
    what = "every symbol stale" if every else f"{len(troubled)} of {len(symbols)} late or stale"
    return HealthLimit(
        component=f"{SYMBOL_FEED}*",
        status=status,
        at_most=CEILINGS[Role.VITAL, status],
        detail=f"{what}: {names}",
    )


class HealthLevel(enum.StrEnum):
    """The user's guide's bands of the health score."""

    EXCELLENT = "Excellent"  # 90-100
    GOOD = "Good"  # 75-89
    FAIR = "Fair"  # 60-74
    POOR = "Poor"  # 40-59
    CRITICAL = "Critical"  # below 40

    @property
    def is_serving(self) -> bool:
        """Return whether the daemon counts as healthy at this level (Fair or better)."""
        return self in _SERVING


_SERVING = frozenset({HealthLevel.EXCELLENT, HealthLevel.GOOD, HealthLevel.FAIR})
_BANDS = (
    (90, HealthLevel.EXCELLENT),
    (75, HealthLevel.GOOD),
    (60, HealthLevel.FAIR),
    (40, HealthLevel.POOR),
)


def health_level(score: int) -> HealthLevel:
    """Return the band of a 0-100 score: Excellent 90+, Good 75+, Fair 60+, Poor 40+, else
    Critical."""
    for floor, level in _BANDS:
        if score >= floor:
            return level
    return HealthLevel.CRITICAL
