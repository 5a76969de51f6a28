"""The HTTP way in: health, Prometheus metrics and a read-only JSON API (aiohttp)."""
