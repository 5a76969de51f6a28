"""The trading step: the pure ``Trader``, its values and persisted-state codecs, the stage
that commits each instant's ledger change before it tells anyone, and the trade events.
"""
