"""paper-trader: a single-process asyncio daemon that paper-trades crypto on live exchange data."""

__version__ = "0.1.0"
