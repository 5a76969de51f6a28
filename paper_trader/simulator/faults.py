"""Fault injection for the simulated exchange: the settings, garbage frames, and counters."""

import math
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from paper_trader.errors import ConfigError

GARBAGE_KINDS = ("not_json", "truncated_json", "unknown_shape", "error_frame")
_NOT_JSON = "<html><body><h1>502 Bad Gateway</h1></body></html>"
_UNKNOWN_SHAPE = '{"e":"mystery"}'
_ERROR_FRAME = '{"error":{"code":4,"msg":"Too many subscriptions"},"id":null}'


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Seeded faults the simulator injects; every one is off by default.

    Periods are wall seconds (``None`` = never); rates are probabilities per WebSocket frame
    (duplicate, reorder, garbage), per final kline frame (``final_drop_rate``: the frame is
    never sent, as when a venue's stream misses one) or per REST request (429, 418, 5xx, each
    with ``Retry-After``); ``rest_latency_s`` delays every REST answer (a slow venue).
    """

    drop_every_s: float | None = None
    silence_every_s: float | None = None
    silence_for_s: float = 5.0
    shutdown_every_s: float | None = None
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    garbage_rate: float = 0.0
    final_drop_rate: float = 0.0
    rest_429_rate: float = 0.0
    rest_418_rate: float = 0.0
    rest_5xx_rate: float = 0.0
    rest_latency_s: float = 0.0
    retry_after_s: float = 1.0
    accept_then_close: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_every_s", "silence_every_s", "shutdown_every_s"):
            period = getattr(self, name)
            if period is not None and not period > 0:
                raise ConfigError(f"{name} must be more than 0 seconds, got {period}")
        for name in (
            "duplicate_rate",
            "reorder_rate",
            "garbage_rate",
            "final_drop_rate",
            "rest_429_rate",
            "rest_418_rate",
            "rest_5xx_rate",
        ):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"{name} must be between 0 and 1, got {rate}")
        if self.rest_429_rate + self.rest_418_rate + self.rest_5xx_rate > 1.0:
            raise ConfigError("rest_429_rate + rest_418_rate + rest_5xx_rate must not exceed 1")
        if min(self.silence_for_s, self.retry_after_s, self.accept_then_close) < 0:
            raise ConfigError("silence_for_s, retry_after_s and accept_then_close must be >= 0")
        if not (math.isfinite(self.rest_latency_s) and self.rest_latency_s >= 0):
            raise ConfigError(f"rest_latency_s must be 0 or more, got {self.rest_latency_s}")


def garbage_frame(rng: random.Random, frame: str) -> tuple[str, str]:
    """Return ``(kind, text)``: a frame a client must survive, chosen at random."""
    kind = rng.choice(GARBAGE_KINDS)
    texts = {
        "not_json": _NOT_JSON,
        "truncated_json": frame[: max(1, len(frame) // 2)],
        "unknown_shape": _UNKNOWN_SHAPE,
        "error_frame": _ERROR_FRAME,
    }
    return kind, texts[kind]


def retry_after_header(seconds: float) -> str:
    """Return a ``Retry-After`` value: whole seconds, rounded up."""
    return str(max(0, math.ceil(seconds)))


@dataclass(frozen=True, slots=True, kw_only=True)
class SimStats:
    """A snapshot of what the simulator did; ``frames_sent`` is keyed by frame kind.

    Frame kinds: ``kline`` (partial), ``kline_final``, ``duplicate``, ``garbage``,
    ``server_shutdown``, ``response`` (replies to control messages).
    """

    connections_accepted: int
    connections_active: int
    frames_sent: Mapping[str, int]
    duplicates: int
    reorders: int
    garbage: int
    finals_dropped: int
    drops: int
    silences: int
    shutdowns: int
    rest_requests: int
    rest_429: int
    rest_418: int
    rest_5xx: int


class StatsCounter:
    """The live counters behind `SimStats`, shared by the simulator's parts."""

    def __init__(self) -> None:
        self.connections_accepted = 0
        self.frames_sent: Counter[str] = Counter()
        self.duplicates = 0
        self.reorders = 0
        self.garbage = 0
        self.finals_dropped = 0
        self.drops = 0
        self.silences = 0
        self.shutdowns = 0
        self.rest_requests = 0
        self.rest_429 = 0
        self.rest_418 = 0
        self.rest_5xx = 0

    def count_status(self, status: int) -> None:
        """Count a REST response by its status."""
        if status == 429:
            self.rest_429 += 1
        elif status == 418:
            self.rest_418 += 1
        elif status >= 500:
            self.rest_5xx += 1

    def snapshot(self, *, active: int) -> SimStats:
        """Return the counters as a frozen snapshot."""
        return SimStats(
            connections_accepted=self.connections_accepted,
            connections_active=active,
            frames_sent=MappingProxyType(dict(self.frames_sent)),
            duplicates=self.duplicates,
            reorders=self.reorders,
            garbage=self.garbage,
            finals_dropped=self.finals_dropped,
            drops=self.drops,
            silences=self.silences,
            shutdowns=self.shutdowns,
            rest_requests=self.rest_requests,
            rest_429=self.rest_429,
            rest_418=self.rest_418,
            rest_5xx=self.rest_5xx,
        )
