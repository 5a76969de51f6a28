"""Transport-agnostic queries and commands on a running trader (status, positions, pause,
resume, close, emergency stop, period reports) and the summaries they share with ``report``.
"""
