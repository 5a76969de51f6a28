"""Market data kept in memory: per-symbol candle buffers and the data-quality gate."""
