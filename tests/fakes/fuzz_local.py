"""The daemon's own ways in as hypothesis strategies: candle CSV files, Telegram command
lines, status-feed messages and handshakes, control-socket requests and HTTP API queries.

Each is shaped after the format its module documents (``market/candle_csv.py``,
``interfaces/telegram/commands.py``, ``docs/status-protocol.md``,
``interfaces/control_socket.py``, ``interfaces/http/api.py``), with the atoms of
``fakes/fuzz_atoms.py`` where a value goes.
"""

from datetime import timedelta, timezone
from typing import Any
from urllib.parse import quote

from fakes.fuzz_atoms import (
    JSON_VALUES,
    deep,
    digits,
    dumps,
    embedded,
    mostly,
    raw_input,
    texts,
    tricky,
)
from hypothesis import strategies as st
from multidict import MultiDict

from paper_trader.interfaces.http.api import ROUTES
from paper_trader.interfaces.status.hub import TOPICS
from paper_trader.interfaces.telegram.commands import BY_NAME
from paper_trader.market.candle_csv import HEADER

# Candle CSV: an optional header, then timestamp_ms,open,high,low,close,volume rows.
_HEADERS = st.sampled_from(
    (",".join(HEADER), ",".join(HEADER).upper(), " , ".join(HEADER), "time,o,h,l,c,v", "")
)
_CSV_VALUES = (
    st.sampled_from(("100.5", "0", "1e3", "-1", "NaN", "Infinity", "1e999999", "0.000001"))
    | st.decimals(allow_nan=True).map(str)
    | tricky
)
_STEPS = st.sampled_from((1, 1, 1, 2, 0, -1)) | st.integers(-3, 50)
_ODD_TIME = st.one_of(st.none(), st.none(), st.none(), digits | texts)  # None: the row's own
_CSV_ROW = st.tuples(
    _STEPS,
    st.lists(_CSV_VALUES, min_size=5, max_size=5) | st.lists(_CSV_VALUES, max_size=7),
    _ODD_TIME,
)


def _csv(header: str, start: int, rows: list[tuple[int, list[str], str | None]], end: str) -> str:
    lines = [header] if header else []
    open_ms = start
    for step, values, odd_time in rows:
        open_ms += step * 60_000
        lines.append(",".join([str(open_ms) if odd_time is None else odd_time, *values]))
    return end.join(lines) + end


_CSV_TEXT = st.builds(
    _csv,
    _HEADERS,
    st.integers(0, 10**6).map(lambda k: k * 60_000) | st.sampled_from((-60_000, 7, 2**63)),
    st.lists(_CSV_ROW, max_size=8),
    st.sampled_from(("\n", "\r\n", "\r", "\n\n")),
)
_GOOD_VALUES = st.decimals(min_value=0, max_value=10**7, places=6).map(str)
_GOOD_CSV = st.builds(
    lambda header, start, steps, values, end: _csv(
        header,
        start,
        [(step, list(row), None) for step, row in zip(steps, values, strict=False)],
        end,
    ),
    st.sampled_from((",".join(HEADER), "")),
    st.integers(0, 10**8).map(lambda k: k * 60_000),
    st.lists(st.integers(1, 3), min_size=1, max_size=8),
    st.lists(st.tuples(*(_GOOD_VALUES,) * 5), min_size=8, max_size=8),
    st.sampled_from(("\n", "\r\n")),
)
CSV_FILES = (
    _GOOD_CSV.map(str.encode)
    | _CSV_TEXT.map(str.encode)
    | st.tuples(_CSV_TEXT, st.sampled_from(("utf-16", "latin-1", "utf-8-sig"))).map(
        lambda pair: pair[0].encode(pair[1], "replace")
    )
    | st.binary(max_size=300)
)

# Telegram: "/name args", as PTB splits it (``message.text.split()[1:]`` are the args).
_NAMES = st.sampled_from(sorted(BY_NAME)) | st.sampled_from(("Trades", "buy", "sell", ""))
_ARGS = (
    tricky
    | st.integers(-5, 1000).map(str)
    | st.text(max_size=10)
    | st.sampled_from(("BTC-USDT", "eth-usdt", "all", "x" * 31, "0" * 5 + "7"))
)
_BOT = st.sampled_from(("", "@paper_trader_bot", "@other_bot", "@"))
_COUNTED = sorted(name for name, command in BY_NAME.items() if command.args in ("[n]", "[days]"))
TELEGRAM_LINES = (
    st.builds(
        lambda name, count: f"/{name} {count}",
        st.sampled_from(_COUNTED),
        digits | st.integers(-5, 1000).map(str) | tricky,
    )
    | st.builds(
        lambda name, bot, args, sep: f"/{name}{bot}{sep}{sep.join(args)}",
        _NAMES,
        _BOT,
        st.lists(_ARGS, max_size=4),
        st.sampled_from((" ", "  ", "\n", "\t")),
    )
    | st.builds(lambda name, rest: f"/{name} {rest}", _NAMES, st.text(max_size=60))
)

# Status feed: what a client may send (a subscribe), and the handshake's URL and headers.
_TOPIC_NAMES = st.sampled_from(sorted(TOPICS | {"*"})) | texts | JSON_VALUES
_STATUS = mostly(
    {
        "type": st.sampled_from(("subscribe", "unsubscribe", "ping")) | texts,
        "topics": st.lists(_TOPIC_NAMES, max_size=4),
    }
)
_SUBSCRIBE = st.fixed_dictionaries(
    {"type": st.just("subscribe"), "topics": st.lists(st.sampled_from(sorted(TOPICS | {"*"})))}
)
STATUS_MESSAGES = (
    (_SUBSCRIBE | _STATUS).map(dumps)
    | _STATUS.map(dumps).map(str.encode)
    | embedded(_STATUS)
    | raw_input()
)
_QUERY_NAMES = st.sampled_from(("since", "run", "topics", "token", "")) | st.text(max_size=5)
_QUERY_VALUES = (
    digits
    | st.sampled_from(("candle,fill", "*", "s3cret", "run-1", "%C2%B2", "%ZZ", "a%00b"))
    | texts.map(quote)
    | st.text(alphabet=st.characters(max_codepoint=127), max_size=12)
)
_QUERY = st.lists(st.tuples(_QUERY_NAMES, _QUERY_VALUES), max_size=4).map(
    lambda pairs: "&".join(f"{k}={v}" for k, v in pairs)
)
_PATHS = (
    st.builds(lambda base, query: f"{base}?{query}", st.sampled_from(("/", "/ws", "//")), _QUERY)
    | st.sampled_from(("/", "//[x/?since=1", "http://[::1/?", "/?since=1#frag", "*", "/?=&&="))
    | st.text(alphabet=st.characters(max_codepoint=127), max_size=30)
)
_HANDSHAKE_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "origin": st.sampled_from(("http://127.0.0.1:8080", "http://evil.example", "null")) | texts,
        "authorization": st.sampled_from(("Bearer s3cret", "bearer  s3cret ", "Basic x"))
        | texts.map(lambda t: "Bearer " + t),
    },
)
STATUS_HANDSHAKES = st.tuples(_PATHS, _HANDSHAKE_HEADERS, st.booleans())

# Control socket: one JSON line of at most 4096 bytes.
_CONTROL = mostly(
    {
        "command": st.sampled_from(("status", "pause", "resume", "close", "emergency_stop"))
        | texts,
        "reason": texts | st.just("x" * 201),
        "symbol": st.sampled_from(("BTC-USDT", "all", "ALL", " ")) | texts,
    }
)
_GOOD_CONTROL = st.fixed_dictionaries(
    {"command": st.sampled_from(("status", "pause", "resume", "close", "emergency_stop"))},
    optional={"reason": st.text(min_size=1, max_size=30), "symbol": st.just("BTC-USDT")},
)
_LINE_ENDS = st.sampled_from((b"\n", b"\n", b"", b"\r\n"))
CONTROL_LINES = st.builds(
    lambda text, end: text.encode() + end,
    (_GOOD_CONTROL | _CONTROL).map(dumps) | embedded(_CONTROL),
    _LINE_ENDS,
) | st.builds(
    lambda raw, end: (raw.encode() if isinstance(raw, str) else raw) + end,
    raw_input() | deep,
    _LINE_ENDS,
)


# HTTP API: a route and its query (what aiohttp's ``request.query`` holds).
def _iso(moment: Any, offset: int | None, sep: str) -> str:
    zone = None if offset is None else timezone(timedelta(minutes=offset))
    return str(moment.replace(tzinfo=zone).isoformat(sep=sep))


_SINCE = (
    digits
    | st.builds(_iso, st.datetimes(), st.none() | st.integers(-1439, 1439), st.sampled_from("T "))
    | st.sampled_from(("2026-01-31T12:00:00Z", "2026-01-31", "0001-01-01T00:00:00+23:59"))
    | texts
)
_LIMIT = digits | st.integers(-2, 1002).map(str) | texts
HTTP_QUERIES = st.tuples(
    st.sampled_from(sorted(ROUTES)) | st.sampled_from(("/api/trades", "/api/equity", "/api/x")),
    st.fixed_dictionaries({}, optional={"limit": _LIMIT, "since": _SINCE, "x": texts}).map(
        MultiDict
    ),
)
