"""Ingest throughput: Binance kline frames parsed + normalised + deduplicated per second.

Method: build N combined-stream kline frames (bytes, the shape Binance sends) for 4 symbols
from seeded synthetic candles: per candle, ``--updates`` frames with ``"x": false`` and one
final frame with ``"x": true`` (Binance sends an update every 2 s, so a 1m candle has ~30
frames; the default 29+1 mirrors that), then every frame again as a duplicate block (the
replays a reconnect produces). The timed loop is what the feed does per frame on one core,
in one thread: ``BinanceAdapter.parse`` (msgspec decode into typed structs, wire symbol and
interval mapped to the internal series key) and ``SeriesSequencer.on_update`` (dedup by
open time, closed-flag handling; a closed candle becomes a ``Candle`` with ``Decimal``
prices). Networking, the event loop and storage are not in the loop. Reported: median of
``--runs`` runs, for the realistic mix and for the worst case where every frame is a
closed candle (a ``Decimal`` conversion per frame). The raw msgspec decode of the same
frames into dicts is printed as the ceiling.

    .venv/bin/python bench/ingest.py [--candles 20000] [--updates 29] [--runs 5]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from paper_trader.domain import Candle, Interval  # noqa: E402
from paper_trader.domain.symbols import parse_pair  # noqa: E402
from paper_trader.exchange.binance import BinanceAdapter  # noqa: E402
from paper_trader.exchange.sequencer import SeriesSequencer  # noqa: E402
from paper_trader.exchange.wire import Subscription  # noqa: E402
from paper_trader.simulator.synthetic import generate_candles  # noqa: E402

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "BNBUSDT")


def frame(symbol: str, c: Candle, *, closed: bool, event_ms: int) -> bytes:
    """Return one combined-stream kline frame as Binance formats it."""
    x = "true" if closed else "false"
    return (
        f'{{"stream":"{symbol.lower()}@kline_1m","data":{{"e":"kline","E":{event_ms},'
        f'"s":"{symbol}","k":{{"t":{c.open_time_ms},"T":{c.open_time_ms + 59_999},'
        f'"s":"{symbol}","i":"1m","f":100,"L":200,"o":"{c.open}","c":"{c.close}",'
        f'"h":"{c.high}","l":"{c.low}","v":"{c.volume}","n":100,"x":{x},'
        f'"q":"12345.67","V":"1.5","Q":"3.25","B":"0"}}}}}}'
    ).encode()


def frames(candles: int, updates: int) -> list[bytes]:
    """Return the frames of ``candles`` candles per symbol, then all of them again."""
    out: list[bytes] = []
    series = {
        s: list(generate_candles(count=candles, seed=i, symbol=s)) for i, s in enumerate(SYMBOLS)
    }
    for index in range(candles):
        for symbol in SYMBOLS:
            c = series[symbol][index]
            for step in range(updates):
                out.append(frame(symbol, c, closed=False, event_ms=c.open_time_ms + step * 2000))
            out.append(frame(symbol, c, closed=True, event_ms=c.open_time_ms + 59_999))
    return out + out  # the second half is all duplicates


def run_once(data: list[bytes]) -> tuple[float, int]:
    """Parse and sequence every frame; return frames per second and candles emitted."""
    subs = [Subscription(parse_pair(s), Interval.M1) for s in SYMBOLS]
    adapter = BinanceAdapter(subs, ws_base="ws://127.0.0.1:1", rest_base="http://127.0.0.1:1")
    seqs = {
        (s.symbol, s.interval): SeriesSequencer(s, adapter.venue, last_open_ms=None) for s in subs
    }
    parse = adapter.parse
    emitted = 0
    started = time.perf_counter()
    for raw in data:
        parsed = parse(raw)
        if isinstance(parsed, tuple):
            for update in parsed:
                if seqs[(update.symbol, update.interval)].on_update(update) is not None:
                    emitted += 1
    elapsed = time.perf_counter() - started
    return len(data) / elapsed, emitted


def raw_decode(data: list[bytes]) -> float:
    """Return frames per second of msgspec decoding into plain dicts (no types, no logic)."""
    decode = msgspec.json.decode
    started = time.perf_counter()
    for raw in data:
        decode(raw)
    return len(data) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=2000, help="candles per symbol")
    parser.add_argument("--updates", type=int, default=29, help="open updates per candle")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    mixed = frames(args.candles, args.updates)
    closed_only = frames(args.candles * 10, 0)
    for name, data in (("realistic mix", mixed), ("closed frames only", closed_only)):
        results = [run_once(data) for _ in range(args.runs)]
        rates = [rate for rate, _ in results]
        emitted = results[0][1]
        print(
            f"{name:>19}: {statistics.median(rates):>10,.0f} frames/s "
            f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}; {len(data):,} frames, "
            f"{emitted:,} candles emitted, {len(data) - emitted:,} held or dropped)"
        )
    ceiling = statistics.median(raw_decode(mixed) for _ in range(args.runs))
    print(f"{'raw msgspec decode':>19}: {ceiling:>10,.0f} frames/s (ceiling: dicts, no types)")
    print("goal: >= 200,000 frames/s on one core")


if __name__ == "__main__":
    main()
