"""Live market data: one adapter per venue (Binance, Bitvavo, Kraken) and the feed that
connects, sequences, backfills and settles their candles."""
