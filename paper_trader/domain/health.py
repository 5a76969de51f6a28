"""Health of one component, as reported to the health monitor, systemd and /health."""

import enum
from dataclasses import dataclass


class HealthStatus(enum.IntEnum):
    """Ordered so that the worst of several statuses is their ``max``."""

    OK = 0
    DEGRADED = 1
    CRITICAL = 2

    @property
    def label(self) -> str:
        """Return the lowercase name used in logs and JSON."""
        return self.name.lower()


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentHealth:
    """One component's status and a short human-readable reason."""

    component: str
    status: HealthStatus
    detail: str = ""
