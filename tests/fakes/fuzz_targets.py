"""Every decoder of outside input as a fuzz target: its input's shape, the call, and the
refusals it documents. ``tests/unit/test_fuzz_decoders.py`` and ``bench/fuzz.py`` both run
``targets()``; the property is the same for both: any input is decoded to a value or refused
with exactly the target's ``refusals``, and nothing else escapes (no KeyError, TypeError,
ValueError, RecursionError, …). A target also checks the value it gets back where the
decoder promises something about it (candles are candles, counts are within their limits).

Where a decoder is part of a command that then asks the daemon something (Telegram commands,
control-socket requests, HTTP routes), the real command runs with ``Asking`` in place of the
daemon: its own decoding runs as it does live, and it stops, with ``Asked``, at its first call
into the daemon, whose arguments are the decoded values. No target waits on I/O: the
coroutines are driven to their end by ``drive``.
"""

import types
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

from fakes import fuzz_local as local
from fakes import fuzz_venues as venues
from fakes.adapter_checks import CannedRest, bitvavo_adapter, kraken_adapter, sub
from hypothesis import strategies as st

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.errors import DataIntegrityError, TransientError
from paper_trader.exchange import rest
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.wire import (
    Control,
    KlinePage,
    MalformedFrame,
    RateSignal,
    RestAnswer,
    Subscription,
    VenueAdapter,
    VenueError,
)
from paper_trader.interfaces import control_socket
from paper_trader.interfaces.http import api
from paper_trader.interfaces.status.access import Access, wanted
from paper_trader.interfaces.status.server import subscription
from paper_trader.interfaces.telegram.commands import BY_NAME, Reply, UsageError
from paper_trader.market.candle_csv import CandleCsv

INT64_MAX = 2**63 - 1  # the most an SQLite INTEGER holds


class Target:
    """One decoder: its input's shape, the call, the refusals it documents, and how
    ``fakes/fuzz_mutate.py`` mutates an input (``kind``: one kind, or one per tuple part).

    Not a dataclass: a failing hypothesis example names the target, not its strategy.
    """

    __slots__ = ("call", "kind", "name", "refusals", "strategy")

    def __init__(
        self,
        name: str,
        strategy: st.SearchStrategy[Any],
        call: Callable[[Any], object],
        refusals: tuple[type[Exception], ...],
        kind: str | tuple[str, ...],
    ) -> None:
        self.name = name
        self.strategy = strategy
        self.call = call
        self.refusals = refusals
        self.kind = kind

    def __repr__(self) -> str:
        return f"<fuzz target {self.name}>"


class Asked(Exception):
    """A command decoded its arguments and called the daemon: ``what(*args, **kwargs)``."""

    def __init__(self, what: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        super().__init__(what)
        self.what = what
        self.values = (*args, *kwargs.values())


class Asking:
    """The daemon behind an interface: any attribute is another ``Asking``; a call raises
    ``Asked``, or, for a name in ``answers``, returns an awaitable of that answer."""

    def __init__(self, path: str, answers: Mapping[str, object] | None = None) -> None:
        self._path = path
        self._answers = answers or {}

    def __getattr__(self, name: str) -> "Asking":
        return Asking(f"{self._path}.{name}", self._answers)

    def __call__(self, *args: Any, **kwargs: Any) -> Coroutine[Any, Any, object]:
        if self._path in self._answers:
            return _ready(self._answers[self._path])
        raise Asked(self._path, args, kwargs)


async def _ready(value: object) -> object:
    return value


def drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits on I/O to its end; return its value."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise AssertionError("the decoder waited on something: it must not do I/O")


def check_asked(asked: Asked, low: int, high: int, text_max: int | None = None) -> str:
    """Check what a command handed the daemon: whole numbers in ``[low, high]``, and text
    non-empty and at most ``text_max`` characters; return the call's name."""
    for value in asked.values:
        if isinstance(value, int) and not isinstance(value, bool):
            assert low <= value <= high, f"{asked.what}: {value} is out of [{low}, {high}]"
        elif isinstance(value, str) and text_max is not None:
            assert 0 < len(value) <= text_max, f"{asked.what}: {value[:40]!r}"
    return asked.what


def deliverable(text: str | bytes) -> str | bytes:
    """Return text as a WebSocket or Telegram delivers it: valid Unicode (no lone surrogate)."""
    return text.encode("utf-8", "replace").decode() if isinstance(text, str) else text


def frame_decoder(adapter: VenueAdapter) -> Callable[[str | bytes], object]:
    """Return what the feed does with a frame: parse it, then turn each update into a candle."""

    def decode(raw: str | bytes) -> object:
        frame = adapter.parse(deliverable(raw))
        if isinstance(frame, Control):
            return frame
        assert isinstance(frame, tuple), frame
        candles = tuple(update.to_candle(adapter.venue) for update in frame)
        assert all(isinstance(c, Candle) for c in candles)
        return candles

    return decode


def rest_decoder(adapter: VenueAdapter, series: Subscription) -> Callable[[Any], object]:
    """Return what the REST client and the backfill do with an answer: read its rate signal;
    a 200 that is not limited goes on to the endpoint's decoder (klines from 0, or time)."""

    def decode(answer: tuple[str, int, Mapping[str, str], object]) -> object:
        endpoint, status, headers, body = answer
        signal = adapter.rate_signal(RestAnswer(status, headers, body))
        assert isinstance(signal, RateSignal)
        if status != 200 or signal.limited:
            return signal  # the REST client raises: the body goes no further
        if endpoint == "time":
            now = drive(adapter.server_time_ms(CannedRest(body)))
            assert type(now) is int
            return now
        page = drive(adapter.fetch_klines(CannedRest(body), series, 0, 2 * 10**12))
        assert isinstance(page, KlinePage)
        return page

    return decode


def rest_raw(answer: tuple[bytes, Mapping[str, str]]) -> object:
    """Decode a REST answer's bytes and headers as the REST client does (never refused)."""
    raw, headers = answer
    is_json, body = rest._decode(raw)
    code, message = rest._error_text(body if is_json else None, raw)
    assert isinstance(code, str)
    assert isinstance(message, str)
    return body, rest._retry_after_s(headers), rest._http_date_ms(headers.get("Date", ""))


class CsvDecoder:
    """Write the bytes to one file and read it as a candle CSV: validate, then every chunk."""

    def __init__(self, path: Path) -> None:
        self._csv = CandleCsv(path, venue=Venue.BINANCE, symbol="BTC-USDT", interval=Interval.M1)

    def __call__(self, data: bytes) -> int:
        # A new file each time: ext4 flushes a file truncated and written again (auto_da_alloc).
        self._csv.path.unlink(missing_ok=True)
        self._csv.path.write_bytes(data)
        rows = self._csv.validate()
        candles = [c for chunk in self._csv.chunks(500) for c in chunk]
        assert len(candles) == rows
        assert all(0 <= c.open_time_ms <= INT64_MAX for c in candles)
        return rows


_CONSOLE = types.SimpleNamespace(
    control=Asking("control"), reports=Asking("reports"), system=Asking("system")
)


def telegram_command(text: str) -> object:
    """Route a command line as PTB does and run the command's own argument decoding."""
    words = str(deliverable(text)).split()
    if not words or not words[0].startswith("/"):
        return None  # no command: no handler runs
    command = BY_NAME.get(words[0][1:].partition("@")[0].lower())
    if command is None:
        return None  # the unknown-command answer
    try:
        reply = drive(command.run(_CONSOLE, words[1:]))  # type: ignore[arg-type]
    except Asked as asked:
        return check_asked(asked, 1, 366, text_max=200)
    assert isinstance(reply, Reply)
    return reply


def control_request(line: bytes) -> object:
    """Decode one control-socket line and run its command's own checks (``BadRequest``)."""
    request = control_socket._parse(line)
    handler = control_socket._HANDLERS[request["command"]]
    try:
        return drive(handler(Asking("control"), request, "cli"))  # type: ignore[arg-type]
    except Asked as asked:
        return check_asked(asked, 0, 0, text_max=control_socket.MAX_REASON_CHARS)


_OPEN_ACCESS = Access(
    token=None, origins=lambda: frozenset({"http://127.0.0.1:8080"}), max_clients=5
)
_TOKEN_ACCESS = Access(token="s3cret", origins=_OPEN_ACCESS.origins, max_clients=5)


def status_handshake(request: tuple[str, dict[str, str], bool]) -> object:
    """Check a handshake as the status server does; one it lets in must say what it wants."""
    path, headers, with_token = request
    # websockets hands on an ASCII request target without spaces, headers as ISO-8859-1.
    path = path.encode("ascii", "replace").decode().translate({32: None, 10: None, 13: None})
    headers = {k: v.encode("latin-1", "replace").decode("latin-1") for k, v in headers.items()}
    refusal = (_TOKEN_ACCESS if with_token else _OPEN_ACCESS).refusal(path, headers, 0)
    if refusal is None:
        return wanted(path)  # StatusServer._serve reads it again, outside any try
    return refusal


_LAST_CANDLE = types.SimpleNamespace(last_candle_ms=1_700_000_000_000)
_API = api.ApiSources(
    control=Asking("control", {"control.status": _LAST_CANDLE}),  # type: ignore[arg-type]
    reports=Asking("reports"),  # type: ignore[arg-type]
    health=lambda: None,
)


def http_query(request: tuple[str, Mapping[str, str]]) -> object:
    """Run an API route on a query; what it hands the daemon must fit SQLite's integers."""
    path, query = request
    route = api.ROUTES.get(path)
    if route is None:
        return None  # aiohttp answers 404
    try:
        return drive(route(_API, query))
    except Asked as asked:
        return check_asked(asked, 0, INT64_MAX)


def _adapters() -> tuple[BinanceAdapter, VenueAdapter, VenueAdapter]:
    pairs = (sub("BTC-USDT"), sub("ETH-USDT", Interval.M5))
    binance = BinanceAdapter(pairs, ws_base="wss://x", rest_base="https://x")
    bitvavo = bitvavo_adapter(sub("BTC-EUR"), sub("ETH-EUR", Interval.H1))
    kraken = kraken_adapter(sub("BTC-USD"), sub("ETH-USD", Interval.M5))
    return binance, bitvavo, kraken


def targets(workdir: Path) -> tuple[Target, ...]:
    """Return every target; the candle CSV target writes its file in ``workdir``."""
    binance, bitvavo, kraken = _adapters()
    answer, malformed = ("keep", "int", "strmap", "json"), (MalformedFrame,)
    return (
        Target("binance_ws", venues.BINANCE_FRAMES, frame_decoder(binance), malformed, "wire"),
        Target("bitvavo_ws", venues.BITVAVO_FRAMES, frame_decoder(bitvavo), malformed, "wire"),
        Target("kraken_ws", venues.KRAKEN_FRAMES, frame_decoder(kraken), malformed, "wire"),
        Target(
            "binance_rest", venues.BINANCE_ANSWERS, rest_decoder(binance, sub("BTC-USDT")),
            (VenueError,), answer,
        ),
        Target(
            "bitvavo_rest", venues.BITVAVO_ANSWERS, rest_decoder(bitvavo, sub("BTC-EUR")),
            (VenueError,), answer,
        ),
        Target(
            "kraken_rest", venues.KRAKEN_ANSWERS, rest_decoder(kraken, sub("BTC-USD")),
            (VenueError, TransientError), answer,
        ),
        Target("rest_client", venues.REST_RAW, rest_raw, (), ("wire", "strmap")),
        Target(
            "candle_csv", local.CSV_FILES, CsvDecoder(workdir / "fuzz.csv"),
            (DataIntegrityError,), "csv",
        ),
        Target("telegram_command", local.TELEGRAM_LINES, telegram_command, (UsageError,), "text"),
        Target("status_message", local.STATUS_MESSAGES, subscription, (ValueError,), "wire"),
        Target(
            "status_handshake", local.STATUS_HANDSHAKES, status_handshake, (),
            ("text", "strmap", "bool"),
        ),
        Target(
            "control_socket", local.CONTROL_LINES, control_request,
            (control_socket.BadRequest,), "wire",
        ),
        Target("http_query", local.HTTP_QUERIES, http_query, (api.BadQuery,), ("keep", "strmap")),
    )  # fmt: skip
