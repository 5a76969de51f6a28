"""Risk: the trading state machine and its breakers, entry limits, position sizing, exit rules.

Pure and synchronous: imports only ``domain``, ``errors`` and ``clock``; every rule runs on
candle time.
"""
