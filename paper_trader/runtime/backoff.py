"""Capped exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff
And Jitter"): the delay is drawn uniformly from [0, min(cap, base * 2**attempt)], which
spreads reconnects of many clients instead of synchronising them."""

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Delays for successive retries of one thing."""

    base_s: float
    cap_s: float

    def __post_init__(self) -> None:
        # An infinite cap means "uncapped" (ceiling() still stays finite); NaN is never valid.
        if not (math.isfinite(self.base_s) and 0 < self.base_s <= self.cap_s):
            raise ValueError("backoff needs a finite base_s with 0 < base_s <= cap_s")

    def ceiling(self, attempt: int) -> float:
        """Return the largest delay that retry number ``attempt`` (0-based) may wait."""
        # 2**60 already exceeds any cap; clamping keeps the float finite for huge attempts.
        return min(self.cap_s, self.base_s * float(2 ** min(attempt, 60)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return a random delay in ``[0, ceiling(attempt)]``."""
        return rng.uniform(0.0, self.ceiling(attempt))
