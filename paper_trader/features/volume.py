"""Incremental volume indicators: VWAP, OBV flow, volume change and volume ratio.

Same contract as ``indicators.py``: ``step`` folds one valid candle in and writes the columns
from ``at`` on. Windows that hold no volume give the defined values of ``spec.py``, decided
exactly (``Window.sum`` is 0.0 for an all-zero window), never 0/0.
"""

import math

from paper_trader.features.indicators import Step
from paper_trader.features.rolling import Window

NAN = math.nan
isnan = math.isnan


class Vwap(Step):
    __slots__ = ("pv", "vol")

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.pv = Window(n)
        self.vol = Window(n)

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        self.pv.push((h + l + c) / 3.0 * v)
        vol = self.vol
        vol.push(v)
        if vol.count >= vol.n:
            total = vol.sum()
            level = c if total == 0.0 else self.pv.total / total
            out[self.at] = level
            out[self.at + 1] = c / level - 1.0


class ObvFlow(Step):
    __slots__ = ("prev", "signed", "vol")

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.signed = Window(n)
        self.vol = Window(n)
        self.prev = NAN

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        prev = self.prev
        self.prev = c
        if isnan(prev):
            return
        self.signed.push(v if c > prev else -v if c < prev else 0.0)
        vol = self.vol
        vol.push(v)
        if vol.count >= vol.n:
            total = vol.sum()
            out[self.at] = 0.0 if total == 0.0 else self.signed.sum() / total


class VolumeChange(Step):
    __slots__ = ("prev",)

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.prev = NAN

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        prev = self.prev
        self.prev = v
        if not isnan(prev):
            both = v + prev
            out[self.at] = 0.0 if both == 0.0 else (v - prev) / both


class VolumeRatio(Step):
    __slots__ = ("vol",)

    def __init__(self, at: int, n: int) -> None:
        super().__init__(at)
        self.vol = Window(n)

    def step(self, t: int, h: float, l: float, c: float, v: float, out: list[float]) -> None:
        vol = self.vol
        vol.push(v)
        if vol.count >= vol.n:
            total = vol.sum()
            out[self.at] = 1.0 if total == 0.0 else v * vol.n / total
