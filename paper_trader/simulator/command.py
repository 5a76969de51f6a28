"""``python -m paper_trader.simulator``: serve a simulated market on loopback until stopped."""

import argparse
import asyncio
import os
import signal
import sys
from pathlib import Path

from paper_trader.domain import Interval, Venue
from paper_trader.errors import ConfigError, DataIntegrityError
from paper_trader.market.candle_csv import CandleCsv
from paper_trader.runtime.logs import LogConfig, configure_logging, get_logger
from paper_trader.simulator.config import CsvSource, SimulatorConfig, Speed, SyntheticSource
from paper_trader.simulator.faults import Faults
from paper_trader.simulator.server import Simulator

log = get_logger("simulator")

_EXIT_BAD_CONFIG = 2
# Closed candles at start: the daemon's default WARMUP_CANDLES, so a daemon with a model finds
# its whole warm-up (one without, and AUTO_TRAIN, reaches back TRAINING_CANDLES: give --history).
DEFAULT_HISTORY = 1000
# Candles a synthetic market makes after its history unless --candles says otherwise.
LIVE_CANDLES = 1000


def _speed(text: str) -> Speed:
    if text == "max":
        return "max"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive number or 'max', not {text!r}"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"speed must be more than 0, not {text}")
    return value


def _symbols(text: str) -> tuple[str, ...]:
    return tuple(s.strip().upper() for s in text.split(",") if s.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m paper_trader.simulator",
        description="Serve a simulated Binance spot market (kline streams and REST) on loopback.",
    )
    _add_server_arguments(parser)
    _add_market_arguments(parser.add_argument_group("market (a CSV or a synthetic market)"))
    _add_fault_arguments(parser.add_argument_group("faults (seeded; off by default)"))
    return parser


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (0)")
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    parser.add_argument("--ping-interval", type=float, default=20.0, help="seconds (20)")
    parser.add_argument("--pong-timeout", type=float, default=60.0, help="seconds (60)")
    parser.add_argument("--max-connection-age", type=float, default=86_400.0, help="s (86400)")
    parser.add_argument("--weight-limit", type=int, default=6000, help="REST weight/minute (6000)")
    parser.add_argument(
        "--exit-when-finished",
        type=float,
        nargs="?",
        const=1.0,
        metavar="SECONDS",
        help="exit 0 this long (1 s) after the market runs out of candles",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="log level on stderr (INFO)",
    )


def _add_market_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument(
        "--csv",
        type=Path,
        action="append",
        help="candle CSV: timestamp_ms,open,high,low,close,volume (repeat for more symbols)",
    )
    group.add_argument(
        "--symbol", action="append", help="the CSV's symbol, e.g. BTCUSDT (one per --csv)"
    )
    group.add_argument("--symbols", type=_symbols, help="synthetic symbols, A,B (BTCUSDT)")
    group.add_argument("--seed", type=int, default=7, help="synthetic market seed (7)")
    group.add_argument(
        "--candles",
        type=int,
        help=f"candles per symbol in all (synthetic: --history + {LIVE_CANDLES}, CSV: all)",
    )
    group.add_argument("--interval", type=Interval, default=Interval.M1, help="interval (1m)")
    group.add_argument("--start-ms", type=int, default=1_672_531_200_000, help="first open time")
    group.add_argument(
        "--history",
        type=int,
        default=DEFAULT_HISTORY,
        help=f"candles closed at start ({DEFAULT_HISTORY}, the daemon's default WARMUP_CANDLES)",
    )
    group.add_argument("--speed", type=_speed, default=60.0, help="x real time, or max (60)")
    group.add_argument("--updates-per-candle", type=int, default=2, help="partial frames (2)")
    group.add_argument(
        "--start-now", action="store_true", help="start the clock now, not at the first subscriber"
    )


def _add_fault_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--drop-every", type=float, help="drop every WS connection every N s")
    group.add_argument("--silence-every", type=float, help="stop sending data every N s")
    group.add_argument("--silence-for", type=float, default=5.0, help="for this long (5 s)")
    group.add_argument("--shutdown-every", type=float, help="serverShutdown every N s")
    group.add_argument("--duplicate-rate", type=float, default=0.0, help="per frame (0)")
    group.add_argument("--reorder-rate", type=float, default=0.0, help="per frame (0)")
    group.add_argument("--garbage-rate", type=float, default=0.0, help="per frame (0)")
    group.add_argument(
        "--final-drop-rate", type=float, default=0.0, help="final kline frames never sent (0)"
    )
    group.add_argument("--rest-429-rate", type=float, default=0.0, help="per request (0)")
    group.add_argument("--rest-418-rate", type=float, default=0.0, help="per request (0)")
    group.add_argument("--rest-5xx-rate", type=float, default=0.0, help="per request (0)")
    group.add_argument("--rest-latency", type=float, default=0.0, help="s added to REST (0)")
    group.add_argument("--retry-after", type=float, default=1.0, help="Retry-After, s (1)")
    group.add_argument("--accept-then-close", type=int, default=0, help="next N connections")
    group.add_argument("--fault-seed", type=int, default=0, help="fault seed (0)")


def _faults(args: argparse.Namespace) -> Faults:
    return Faults(
        drop_every_s=args.drop_every,
        silence_every_s=args.silence_every,
        silence_for_s=args.silence_for,
        shutdown_every_s=args.shutdown_every,
        duplicate_rate=args.duplicate_rate,
        reorder_rate=args.reorder_rate,
        garbage_rate=args.garbage_rate,
        final_drop_rate=args.final_drop_rate,
        rest_429_rate=args.rest_429_rate,
        rest_418_rate=args.rest_418_rate,
        rest_5xx_rate=args.rest_5xx_rate,
        rest_latency_s=args.rest_latency,
        retry_after_s=args.retry_after,
        accept_then_close=args.accept_then_close,
        seed=args.fault_seed,
    )


def _source(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> tuple[tuple[str, ...], CsvSource | SyntheticSource]:
    if args.csv is None:
        if args.symbol is not None:
            parser.error("--symbol goes with --csv; use --symbols for a synthetic market")
        return args.symbols or ("BTCUSDT",), SyntheticSource(seed=args.seed, start_ms=args.start_ms)
    if args.symbol is None or len(args.symbol) != len(args.csv) or args.symbols is not None:
        parser.error("each --csv needs its --symbol, in the same order, and no --symbols")
    symbols = tuple(symbol.upper() for symbol in args.symbol)
    for path, symbol in zip(args.csv, symbols, strict=True):
        csv = CandleCsv(path, venue=Venue.BINANCE, symbol=symbol, interval=args.interval)
        try:
            csv.validate()
        except (ConfigError, DataIntegrityError) as exc:
            parser.error(str(exc))
    return symbols, CsvSource(paths=tuple(args.csv))


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SimulatorConfig:
    """Build the configuration, or exit 2 with argparse's message."""
    symbols, source = _source(parser, args)
    candles = args.candles
    if candles is None and isinstance(source, SyntheticSource):
        candles = max(args.history, 0) + LIVE_CANDLES  # the history, then a live market
    try:
        return SimulatorConfig(
            host=args.host,
            port=args.port,
            symbols=symbols,
            interval=args.interval,
            source=source,
            candles=candles,
            history=args.history,
            speed=args.speed,
            updates_per_candle=args.updates_per_candle,
            start_on_connect=not args.start_now,
            ping_interval_s=args.ping_interval,
            pong_timeout_s=args.pong_timeout,
            max_connection_age_s=args.max_connection_age,
            weight_limit=args.weight_limit,
            faults=_faults(args),
        )
    except ConfigError as exc:
        parser.error(str(exc))


def _write_port_file(path: Path, port: int) -> None:
    """Write the port atomically, so a script never reads half a number."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(f"{port}\n", encoding="utf-8")
    os.replace(partial, path)


async def _stop_when_finished(sim: Simulator, linger_s: float, stop: asyncio.Event) -> None:
    await sim.wait_finished()
    await asyncio.sleep(linger_s)
    log.info("simulator_exit_when_finished", linger_s=linger_s)
    stop.set()


async def _serve(config: SimulatorConfig, port_file: Path | None, exit_after: float | None) -> int:
    """Serve until SIGTERM/SIGINT (or the market ran out, with ``exit_after``); return 0."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sim = Simulator(config)
    try:
        await sim.start()
    except OSError as exc:
        log.error(  # noqa: TRY400 -- a bind failure is a configuration problem, not a bug
            "simulator_cannot_listen", host=config.host, port=config.port, error=str(exc)
        )
        return _EXIT_BAD_CONFIG
    try:
        if port_file is not None:
            _write_port_file(port_file, sim.port)
        print(f"simulator listening on {sim.rest_url}", flush=True)  # noqa: T201 -- CLI output
        async with asyncio.TaskGroup() as tasks:
            watcher = None
            if exit_after is not None:
                watcher = tasks.create_task(
                    _stop_when_finished(sim, exit_after, stop), name="sim-exit-when-finished"
                )
            await stop.wait()
            if watcher is not None:
                watcher.cancel()
    finally:
        await sim.close()
    log.info("simulator_stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the simulator from the command line; see ``--help``."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.exit_when_finished is not None and args.exit_when_finished < 0:
        parser.error("--exit-when-finished must be 0 or more seconds")
    config = _config(parser, args)
    logging_handle = configure_logging(LogConfig(level=args.log_level), stream=sys.stderr)
    try:
        return asyncio.run(_serve(config, args.port_file, args.exit_when_finished))
    finally:
        logging_handle.close()
