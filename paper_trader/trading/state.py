"""The trader's persisted state in ``trading_state``: its JSON fields and the volatility windows.

The breakers' snapshot, the last candle handled per symbol, the initial balance and the queued
manual closes go into ``state_json`` every instant; the volatility windows, the bulky part,
into ``volatility_json`` less often (``trading.stage.WINDOWS_EVERY``).
"""

import base64
import json
from array import array
from collections.abc import Mapping, Sequence


def handled_of(state: Mapping[str, object]) -> dict[str, int]:
    """Return the last candle handled per symbol from a trader's state (``state_json``)."""
    handled = state.get("handled")
    return {str(k): int(v) for k, v in handled.items()} if isinstance(handled, dict) else {}


def pending_closes_of(state: Mapping[str, object]) -> dict[str, int]:
    """Return the queued manual closes (symbol: candle time of the command) from a trader's
    state; a state written before the queue existed has none."""
    pending = state.get("pending_closes")
    return {str(k): int(v) for k, v in pending.items()} if isinstance(pending, dict) else {}


def encode_windows(windows: Mapping[str, Sequence[float]]) -> str:
    """Return the volatility windows as JSON of their float64 bytes in base64: exact, and about
    a hundred times cheaper to write than lists of floats (100 symbols x 1,440 values)."""
    encoded = {s: base64.b64encode(array("d", v).tobytes()).decode() for s, v in windows.items()}
    return json.dumps(encoded, separators=(",", ":"))


def decode_windows(text: str) -> dict[str, list[float]]:
    """Return the volatility windows that ``encode_windows`` wrote."""
    encoded = json.loads(text)
    return {str(s): array("d", base64.b64decode(data)).tolist() for s, data in encoded.items()}
