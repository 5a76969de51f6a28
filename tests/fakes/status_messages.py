"""Status feed messages' data for tests of its clients: a snapshot as docs/status-protocol.md
names its fields, one with the daemon's own names, and candle events."""

T = 1_700_000_000_000  # a candle's open time (ms)
MIN = 60_000

SNAPSHOT = {
    "state": "active",
    "tripped": [
        {"name": "losing_streak", "symbol": "ETHUSDT", "reason": "3 losses in a row", "at_ms": T}
    ],
    "equity": "10012.50",
    "cash": "9000.00",
    "positions_value": "1012.50",
    "peak_equity": "10050.00",
    "drawdown": 0.0037,
    "open_positions": 1,
    "last_candle_ms": T,
    "positions": [
        {
            "symbol": "BTCUSDT", "side": "long", "quantity": "0.02", "entry_price": "50000.00",
            "opened_ms": T - 5 * MIN, "mark": "50625.00", "unrealised_pnl": "12.50",
            "unrealised_pct": "1.25", "stop": "49000.00", "stop_reason": "stop_loss",
            "target": "53000.00",
        }
    ],
    "trades": [
        {
            "symbol": "ETHUSDT", "side": "long", "quantity": "0.5", "entry_price": "3000.00",
            "exit_price": "3030.00", "net_pnl": "13.20", "return_pct": "0.0088",
            "reason": "take_profit", "opened_ms": T - 30 * MIN, "closed_ms": T - 20 * MIN,
        },
        {
            "symbol": "ETHUSDT", "side": "short", "quantity": "0.5", "entry_price": "3040.00",
            "exit_price": "3055.00", "net_pnl": "-9.05", "return_pct": "-0.0060",
            "reason": "stop_loss", "opened_ms": T - 15 * MIN, "closed_ms": T - 10 * MIN,
        },
    ],
    "signals": [
        {
            "symbol": "BTCUSDT", "action": "entered", "side": "long", "rule": None, "detail": "",
            "quantity": "0.02", "price": "50000.00", "strength": "buy", "score": 0.4,
            "confidence": 0.7,
        }
    ],
    "equity_curve": [
        {"candle_ms": T - 2 * MIN, "equity": "10000.00", "drawdown": 0.0},
        {"candle_ms": T - MIN, "equity": "10050.00", "drawdown": 0.0},
        {"candle_ms": T, "equity": "10012.50", "drawdown": 0.0037},
    ],
    "health": {
        "score": 83, "level": "good", "status": "degraded",
        "components": [
            {"component": "market_feed", "status": "ok", "detail": "binance: connected"},
            {"component": "predictor", "status": "degraded", "detail": "slow inference"},
        ],
    },
    "model": {"version": "20240101-abcdef", "loaded_ms": T},
    "symbols": [
        {"symbol": "BTCUSDT", "last_candle_ms": T, "close": "50625.00", "quality": 1.0,
         "tradable": True},
        {"symbol": "ETHUSDT", "last_candle_ms": T, "close": "3050.00", "quality": 1.0,
         "tradable": True},
    ],
}  # fmt: skip


def candle(symbol: str, close: str) -> dict[str, str]:
    """Return a candle event's data closing at ``close``."""
    return {"symbol": symbol, "interval": "1m", "open": close, "high": close, "low": close,
            "close": close, "volume": "1.5"}  # fmt: skip


# The daemon's values under their own names (as interfaces/status sends them today): the
# portfolio under ``status``, a position inside its view, ``*_candle_ms``, ``exit_reason``.
DAEMON_SNAPSHOT = {
    "status": {
        "state": "reducing", "equity": "9914.865138502444171272", "cash": "8914.86",
        "positions_value": "1000", "peak_equity": "10000", "drawdown": 0.0085,
        "open_positions": 1, "last_candle_ms": T, "entered": 1, "rejected": 0, "skipped": 0,
        "tripped": [{"breaker": "losing_streak", "tripped": True, "state": "reducing",
                     "reason": "5 consecutive losing trades", "symbol": None}],
    },
    "positions": [{
        "position": {
            "symbol": "ETH-USDT", "side": "long", "quantity": "0.48917", "entry_price":
            "2043.9478215203", "opened_candle_ms": T - MIN, "stop_price": "2037.46831343813",
            "take_profit_price": "2056.906837684628", "trailing_stop_price": "2040.1",
        },
        "mark": "2045.10", "unrealised_pnl": "0.563670158413", "unrealised_pct": "0.0563",
        "stop": "2040.1", "stop_reason": "trailing_stop", "target": "2056.906837684628",
    }],
    "trades": [{
        "symbol": "ETH-USDT", "side": "long", "quantity": "0.85978499",
        "entry_price": "2071.9370570412", "exit_price": "2058.9601840324",
        "net_pnl": "-14.709004073210377912", "opened_candle_ms": T - 30 * MIN,
        "closed_candle_ms": T - 29 * MIN, "exit_reason": "stop_loss",
    }],
    "signals": [{
        "symbol": "BTC-USDT", "candle_time_ms": T - MIN, "strength": "buy", "score": 0.13,
        "confidence": 0.68, "action": "rejected", "side": "long", "quantity": None,
        "price": None, "rule": "cost_edge", "detail": "target distance 93.7 does not exceed",
    }],
    "equity": [
        {"candle_time_ms": T - MIN, "equity": "10000", "drawdown": 0.0},
        {"candle_time_ms": T, "equity": "9914.865138502444171272", "drawdown": 0.0085},
    ],
    "health": {"score": 97, "level": "Excellent", "status": "ok", "components": []},
    "model": {"version": "20261202T185340Z-fdbcebe4"},
    "symbols": [{"symbol": "BTC-USDT", "last_candle_ms": T, "close": "30199.48"},
                {"symbol": "ETH-USDT", "last_candle_ms": T, "close": "2045.10"}],
}  # fmt: skip
