"""The composition root: the only package that wires. It builds every component from the
settings and runs the daemon, replay, report and backup; it owns OS signals, the exit deadline
and the run record.
"""
