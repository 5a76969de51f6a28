"""Fuzzing every decoder of outside input (``fakes/fuzz_targets.py``): the venues' WebSocket
frames and REST answers, the REST client's decoding, the candle CSV reader, Telegram command
arguments, status-feed messages and handshakes, control-socket requests and HTTP API queries
each decode or refuse with their documented refusal, for inputs hypothesis draws and for
mutants of them (``fakes/fuzz_engine.py``); ``bench/fuzz.py`` runs the same targets with a
million inputs each. Then the inputs the fuzzing found, each a plain regression test."""

import contextlib
import json
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes.adapter_checks import CannedRest, bitvavo_adapter, kraken_adapter, sub
from fakes.fuzz_engine import Outcome, draw_seeds, run_mutations
from fakes.fuzz_targets import Target, drive, frame_decoder, targets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from paper_trader.domain import Interval, Venue
from paper_trader.errors import DataIntegrityError
from paper_trader.exchange import rest
from paper_trader.exchange.binance import BinanceAdapter
from paper_trader.exchange.wire import MalformedFrame, RestAnswer, VenueError
from paper_trader.interfaces import control_socket
from paper_trader.interfaces.http import api
from paper_trader.interfaces.status.access import Access
from paper_trader.interfaces.status.server import subscription
from paper_trader.interfaces.telegram.commands import UsageError, count_arg
from paper_trader.market.candle_csv import CandleCsv

GENERATED = 150  # inputs hypothesis draws per decoder (about 100-300 a second here)
SEEDS = 100  # inputs hypothesis draws per decoder as the mutation fuzzer's seeds
MUTANTS = 5_000  # inputs per decoder in all, seeds included
NAMES = [t.name for t in targets(Path(tempfile.gettempdir()))]


@pytest.fixture(scope="module")
def by_name(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Target]:
    """Return every target; the CSV target writes in a directory of its own."""
    return {t.name: t for t in targets(tmp_path_factory.mktemp("fuzz"))}


def decode_or_refuse(target: Target, value: Any) -> None:
    """The property: the decoder answers, or raises one of its documented refusals."""
    with contextlib.suppress(*target.refusals):
        target.call(value)


@pytest.mark.parametrize("name", NAMES)
@settings(
    max_examples=GENERATED,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_generated_inputs_are_decoded_or_refused(
    name: str, by_name: dict[str, Target], data: st.DataObject
) -> None:
    """Inputs shaped like the decoder's format, and arbitrary ones, never raise anything but
    the decoder's documented refusal."""
    target = by_name[name]
    decode_or_refuse(target, data.draw(target.strategy, label=name))


@pytest.mark.parametrize("name", NAMES)
def test_mutated_inputs_are_decoded_or_refused(name: str, by_name: dict[str, Target]) -> None:
    """Mutants of generated inputs never raise anything but the documented refusal, and the
    inputs reach both answers and refusals (the shapes get past the first checks)."""
    target = by_name[name]
    outcome = Outcome(name)
    run_mutations(target, draw_seeds(target, SEEDS, 0), MUTANTS, random.Random(name), outcome)
    assert outcome.inputs == MUTANTS
    assert not outcome.failures, outcome.samples
    assert outcome.accepted > 0
    assert outcome.refused > 0 or not target.refusals


def test_a_decoder_that_raises_key_error_is_caught(by_name: dict[str, Target]) -> None:
    """The oracle fails a decoder that lets a KeyError out once in a while (the property
    can fail: it is no tautology)."""
    real = by_name["kraken_ws"]

    def leaky(value: Any) -> object:
        if b"ohlc" in (value.encode() if isinstance(value, str) else value):
            raise KeyError("data")
        return real.call(value)

    target = Target("leaky", real.strategy, leaky, real.refusals, real.kind)
    outcome = Outcome("leaky")
    run_mutations(target, draw_seeds(real, SEEDS, 0), 1_000, random.Random(1), outcome)
    assert outcome.failures
    assert all(key.startswith("KeyError") for key in outcome.failures)
    with pytest.raises(KeyError):
        decode_or_refuse(target, '{"channel":"ohlc"}')


# The inputs the fuzzing found, before the fixes: each raised something undocumented.
DEEP = "[" * 5_000 + "]" * 5_000
ADAPTERS: dict[str, Callable[[], Any]] = {
    "binance": lambda: BinanceAdapter((sub("BTC-USDT"),), ws_base="wss://x", rest_base="x"),
    "bitvavo": bitvavo_adapter,
    "kraken": kraken_adapter,
}
FRAMES = [
    pytest.param(DEEP, id="nested-too-deep"),  # RecursionError
    pytest.param('{"data":' + '{"a":' * 2_000 + "1" + "}" * 2_001, id="deep-in-a-field"),
    pytest.param(b'{"event":"unsu\xacde":1}', id="bytes-not-utf-8"),  # UnicodeDecodeError
    pytest.param(b'["\xff"]', id="string-not-utf-8"),
    pytest.param("[1e1000000000000000000000000000000]", id="number-past-decimal"),
]


@pytest.mark.parametrize("venue", sorted(ADAPTERS))
@pytest.mark.parametrize("raw", FRAMES)
def test_undecodable_frames_are_malformed(venue: str, raw: str | bytes) -> None:
    """Nesting past the recursion limit, strings that are not UTF-8 and numbers Decimal
    cannot hold are malformed frames (RecursionError, UnicodeDecodeError, InvalidOperation)."""
    with pytest.raises(MalformedFrame):
        frame_decoder(ADAPTERS[venue]())(raw)


def test_bitvavo_timestamp_of_4301_digits_is_malformed() -> None:
    """A candle time int() refuses to convert is malformed, on the WebSocket and over REST."""
    row = ["9" * 4_301, "1", "1", "1", "1", "1"]
    head = '{"event":"candle","market":"BTC-EUR","interval":"1m","candle":'
    with pytest.raises(MalformedFrame):
        bitvavo_adapter().parse(f"{head}[{json.dumps(row)}]}}")
    with pytest.raises(VenueError):
        drive(bitvavo_adapter().fetch_klines(CannedRest([row]), sub("BTC-EUR"), 0, 60_000))


def test_binance_used_weight_of_4301_digits_says_nothing() -> None:
    """A used-weight header of 4,301 digits says nothing (it raised ValueError)."""
    headers = CIMultiDict({"X-MBX-USED-WEIGHT-1M": "9" * 4_301})
    signal = ADAPTERS["binance"]().rate_signal(RestAnswer(200, headers, None))
    assert signal.used is None


@pytest.mark.parametrize("raw", [DEEP.encode(), b'{"error":"\xe6"}'])
def test_rest_body_nested_too_deep_or_not_utf8_is_not_json(raw: bytes) -> None:
    """The REST client takes such a body for one that is not JSON (it raised)."""
    assert rest._decode(raw) == (False, None)


def test_rest_date_with_a_year_past_c_int_is_no_date() -> None:
    """A ``Date`` header whose year overflows is no date (it raised OverflowError)."""
    assert rest._http_date_ms("Sat, 16 Nov -9223372036854775808 01:10:59 +1406") is None


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"60000,1,1,\xff1,1,1", "low '\ufffd1' is not a number"),  # UnicodeDecodeError
        ("\u00b2,1,1,1,1,1".encode(), "'\u00b2' is not a whole number"),  # ValueError
        (b"9" * 4_301 + b",1,1,1,1,1", "is past 9223372036854775807"),  # ValueError
        (b"9223372036854775808,1,1,1,1,1", "is past 9223372036854775807"),
    ],
)
def test_csv_rows_not_utf8_or_past_int64_are_reported_with_their_line(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    """A byte that is not UTF-8, a digit int() refuses and a time past SQLite's integers are
    bad rows, reported with their line number (they raised)."""
    path = tmp_path / "candles.csv"
    path.write_bytes(b"0,1,1,1,1,1\n" + line + b"\n")
    csv = CandleCsv(path, venue=Venue.BINANCE, symbol="BTC-USDT", interval=Interval.M1)
    with pytest.raises(DataIntegrityError, match=rf"candles.csv:2: .*{re.escape(problem)}"):
        csv.validate()


@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "9" * 4_301])
def test_telegram_count_int_cannot_read_is_a_usage_error(text: str) -> None:
    """/trades ² is a usage error (it raised ValueError); /trades 007 still means 7."""
    with pytest.raises(UsageError):
        count_arg([text], 10)
    assert count_arg(["007"], 10) == 7


def test_status_message_nested_too_deep_is_refused() -> None:
    """A client's message nested past the recursion limit is answered with an error."""
    with pytest.raises(ValueError, match="nested too deep"):
        subscription(DEEP)


def test_status_handshake_with_a_malformed_url_is_a_400() -> None:
    """``//[x/`` is an invalid IPv6 URL to urlsplit: 400, not a ValueError out of the check."""
    access = Access(token="t", origins=frozenset, max_clients=5)
    refusal = access.refusal("//[x/?since=1", {}, 0)
    assert refusal is not None
    assert refusal.status == 400


@pytest.mark.parametrize(
    "line", [b'{"command":[]}\n', b'{"command":{}}\n', DEEP.encode() + b"\n"], ids=str
)
def test_control_request_unhashable_or_too_deep_is_a_bad_request(line: bytes) -> None:
    """A command that is a list (TypeError) or nesting past the limit is a bad request."""
    with pytest.raises(control_socket.BadRequest):
        control_socket._parse(line)


@pytest.mark.parametrize(
    ("query", "decode"),
    [
        ({"limit": "\u00b2"}, api._limit),
        ({"limit": "9" * 4_301}, api._limit),
        ({"since": "\u00b2"}, api._since),
        ({"since": "9" * 4_301}, api._since),
        ({"since": "9223372036854775808"}, api._since),  # past SQLite: OverflowError later
    ],
    ids=["limit-superscript", "limit-4301-digits", "since-superscript", "since-4301", "int64"],
)
def test_api_limit_or_since_int_cannot_read_is_a_bad_query(
    query: dict[str, str], decode: Callable[[dict[str, str]], int]
) -> None:
    """Such a ``limit`` or ``since`` is a 400 (it raised ValueError, or overflowed SQLite);
    milliseconds still read as they did."""
    with pytest.raises(api.BadQuery):
        decode(query)
    assert api._since({"since": "1700000000000"}) == 1_700_000_000_000
