"""The paper broker: simulated fills, the portfolio ledger, and performance analytics.

Pure and synchronous: imports only ``domain``, ``errors`` and ``clock``.
"""
