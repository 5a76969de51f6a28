"""Status feed messages' data (docs/status-protocol.md) for tests of its clients: snapshots and
the events a test publishes."""

from typing import Any

T = 1_700_000_000_000  # a candle's open time (ms)
MIN = 60_000


def view(position: dict[str, Any], **at_mark: Any) -> dict[str, Any]:
    """Return a snapshot's open position: the position and its figures at the mark."""
    return {"position": position, **at_mark}


def trade(**fields: Any) -> dict[str, Any]:
    """Return a ``trade_closed`` event's data (also a snapshot's trade)."""
    return {"venue": "binance", "interval": "1m", "entry_fee": "0.1", "exit_fee": "0.1",
            "gross_pnl": "0", "entry_fill_id": 1, "recovered": False, **fields}  # fmt: skip


def candle(symbol: str, close: str, open_time_ms: int) -> dict[str, Any]:
    """Return a ``candle`` event's data closing at ``close``."""
    prices = {"open": close, "high": close, "low": close, "close": close}
    return {"venue": "binance", "symbol": symbol, "interval": "1m", "open_time_ms": open_time_ms,
            **prices, "volume": "1.5"}  # fmt: skip


SNAPSHOT = {
    "status": {
        "state": "active", "equity": "10012.50", "cash": "9000.00",
        "positions_value": "1012.50", "peak_equity": "10050.00", "drawdown": 0.0037,
        "open_positions": 1, "last_candle_ms": T, "entered": 1, "rejected": 0, "skipped": 0,
        "tripped": [{"breaker": "losing_streak", "symbol": "ETHUSDT", "tripped": True,
                     "state": "reducing", "reason": "3 losses in a row", "candle_time_ms": T}],
    },
    "positions": [view(
        {"symbol": "BTCUSDT", "side": "long", "quantity": "0.02", "entry_price": "50000.00",
         "opened_candle_ms": T - 5 * MIN, "stop_price": "49000.00",
         "take_profit_price": "53000.00", "trailing_stop_price": None},
        mark="50625.00", unrealised_pnl="12.50", unrealised_pct="1.25", stop="49000.00",
        stop_reason="stop_loss", target="53000.00",
    )],
    "trades": [
        trade(symbol="ETHUSDT", side="long", quantity="0.5", entry_price="3000.00",
              exit_price="3030.00", net_pnl="13.20", exit_reason="take_profit",
              opened_candle_ms=T - 30 * MIN, closed_candle_ms=T - 20 * MIN, exit_fill_id=2),
        trade(symbol="ETHUSDT", side="short", quantity="0.5", entry_price="3040.00",
              exit_price="3055.00", net_pnl="-9.05", exit_reason="stop_loss",
              opened_candle_ms=T - 15 * MIN, closed_candle_ms=T - 10 * MIN, exit_fill_id=4),
    ],
    "signals": [
        {"symbol": "BTCUSDT", "candle_time_ms": T - 5 * MIN, "action": "entered",
         "side": "long", "rule": None, "detail": "entered", "quantity": "0.02",
         "price": "50000.00", "strength": "buy", "score": 0.4, "confidence": 0.7},
    ],
    "equity": [
        {"candle_time_ms": T - 2 * MIN, "equity": "10000.00", "drawdown": 0.0},
        {"candle_time_ms": T - MIN, "equity": "10050.00", "drawdown": 0.0},
        {"candle_time_ms": T, "equity": "10012.50", "drawdown": 0.0037},
    ],
    "health": {
        "score": 83, "level": "Good", "status": "degraded",
        "components": [
            {"component": "market_feed", "status": "ok", "detail": "binance: connected"},
            {"component": "predictor", "status": "degraded", "detail": "slow inference"},
        ],
    },
    "model": {"version": "20240101-abcdef", "walk_forward_accuracy": 0.55},
    "symbols": [
        {"symbol": "BTCUSDT", "interval": "1m", "last_candle_ms": T, "close": "50625.00",
         "quality": 100, "tradable": True},
        {"symbol": "ETHUSDT", "interval": "1m", "last_candle_ms": T, "close": "3050.00",
         "quality": 100, "tradable": True},
    ],
}  # fmt: skip

# Long digits, as a real ledger has them after fees and slippage; a trailing stop that binds.
LONG_DIGITS_SNAPSHOT = {
    "status": {
        "state": "reducing", "equity": "9914.865138502444171272", "cash": "8914.86",
        "positions_value": "1000", "peak_equity": "10000", "drawdown": 0.0085,
        "open_positions": 1, "last_candle_ms": T, "entered": 1, "rejected": 0, "skipped": 0,
        "tripped": [{"breaker": "losing_streak", "tripped": True, "state": "reducing",
                     "reason": "5 consecutive losing trades", "symbol": None}],
    },
    "positions": [view(
        {"symbol": "ETH-USDT", "side": "long", "quantity": "0.48917",
         "entry_price": "2043.9478215203", "opened_candle_ms": T - MIN,
         "stop_price": "2037.46831343813", "take_profit_price": "2056.906837684628",
         "trailing_stop_price": "2040.1"},
        mark="2045.10", unrealised_pnl="0.563670158413", unrealised_pct="0.0563",
        stop="2040.1", stop_reason="trailing_stop", target="2056.906837684628",
    )],
    "trades": [
        trade(symbol="ETH-USDT", side="long", quantity="0.85978499",
              entry_price="2071.9370570412", exit_price="2058.9601840324",
              net_pnl="-14.709004073210377912", opened_candle_ms=T - 30 * MIN,
              closed_candle_ms=T - 29 * MIN, exit_reason="stop_loss", exit_fill_id=2),
    ],
    "signals": [
        {"symbol": "BTC-USDT", "candle_time_ms": T - MIN, "strength": "buy", "score": 0.13,
         "confidence": 0.68, "action": "rejected", "side": "long", "quantity": None,
         "price": None, "rule": "cost_edge", "detail": "target distance 93.7 does not exceed"},
    ],
    "equity": [
        {"candle_time_ms": T - MIN, "equity": "10000", "drawdown": 0.0},
        {"candle_time_ms": T, "equity": "9914.865138502444171272", "drawdown": 0.0085},
    ],
    "health": {"score": 97, "level": "Excellent", "status": "ok", "components": []},
    "model": {"version": "20261202T185340Z-fdbcebe4"},
    "symbols": [{"symbol": "BTC-USDT", "last_candle_ms": T, "close": "30199.48"},
                {"symbol": "ETH-USDT", "last_candle_ms": T, "close": "2045.10"}],
}  # fmt: skip
