"""Sources of candles: exchange adapters, CSV replay and synthetic markets."""
