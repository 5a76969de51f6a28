"""``/health``: the latest health check as JSON; 200 while the level is Fair or better.

The score is the components' weighted mean under the ceilings of their roles
(``control.health.assess_health``), banded by ``health_level``: Excellent 90-100, Good 75-89,
Fair 60-74, Poor 40-59, Critical below 40. ``limits`` lists every ceiling that applies, lowest
first, and ``reason`` is the lowest in one line (null when none applies). Before every service
is ready, or before the first check, the answer is 503 with the reason.
"""

from typing import Any

from paper_trader.clock import iso_ms
from paper_trader.control.system import HealthView, health_level

OK = 200
UNAVAILABLE = 503


def health_answer(view: HealthView | None, *, all_ready: bool) -> tuple[int, dict[str, Any]]:
    """Return the HTTP status and the JSON body of ``/health``."""
    if view is None or not all_ready:
        reason = (
            "starting: not every service is ready yet"
            if not all_ready
            else "starting: no health check has run yet"
        )
        return UNAVAILABLE, {
            "score": None,
            "level": None,
            "status": "starting",
            "reason": reason,
            "components": [] if view is None else _components(view),
        }
    level = health_level(view.score)
    body = {
        "score": view.score,
        "level": level.value,
        "status": view.status.label,
        "reason": view.limits[0].reason if view.limits else None,
        "limits": [
            {
                "component": limit.component,
                "status": limit.status.label,
                "at_most": limit.at_most,
                "detail": limit.detail,
            }
            for limit in view.limits
        ],
        "components": _components(view),
        "rss_mb": view.rss_mb,
        "cpu_percent": view.cpu_percent,
        "loop_lag_ms": view.loop_lag_ms,
        "checked_at": None if view.checked_ms is None else iso_ms(view.checked_ms),
    }
    return (OK if level.is_serving else UNAVAILABLE), body


def _components(view: HealthView) -> list[dict[str, str]]:
    return [
        {"component": c.component, "status": c.status.label, "detail": c.detail}
        for c in view.components
    ]
