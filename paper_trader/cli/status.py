"""``status``: a short summary of the running daemon, read from its HTTP service.

GETs ``/api/status`` and ``/api/positions`` from ``http://HEALTH_HOST:HEALTH_PORT`` (a wildcard
host, ``0.0.0.0`` or ``::``, is reached on loopback) or ``--url``, with the standard library's
client, a short timeout and no proxy, and prints a few lines for people: the trading state and
tripped breakers, equity, cash and drawdown, the open positions at their marks, the health
score and level, the last candle's time. ``--json`` prints one JSON object for scripts
(``url``, ``status``, ``health`` and ``positions``, as the API gives them). Exit 1 with one
line on stderr, naming the URL, when no daemon answers there (or it is still starting, or what
answers is not paper-trader); exit 2 when ``HEALTH_PORT`` is 0 and no ``--url`` says where.
"""

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

from paper_trader.clock import iso_ms
from paper_trader.errors import ConfigError, PaperTraderError
from paper_trader.settings import Settings

TIMEOUT_S = 3.0
EXIT_NO_DAEMON = 1
# A wildcard a daemon binds, and the loopback address a client reaches it on.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 -- compared, never bound
_CENT = Decimal("0.01")
_PRICE_DIGITS = 6


class NoAnswer(PaperTraderError):
    """The daemon did not answer as paper-trader's HTTP service does (one line, for stderr)."""


def url_argument(text: str) -> str:
    """Return ``--url`` as ``http://host:port``; reject anything else."""
    parts = urllib.parse.urlsplit(text.strip())
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in {"http", "https"} or not parts.hostname or port is None:
        raise argparse.ArgumentTypeError(f"expected http://HOST:PORT, got {text!r}")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"expected http://HOST:PORT without a path, got {text!r}")
    return f"{parts.scheme}://{parts.netloc}"


def daemon_url(settings: Settings) -> str:
    """Return where the daemon of ``settings`` serves HTTP, as a client reaches it."""
    if settings.health_port == 0:
        raise ConfigError(
            "HEALTH_PORT is 0 (any free port), so the daemon's HTTP port is not known here: "
            "pass --url http://HOST:PORT (the daemon logs it as http_listening)"
        )
    host = _LOOPBACK_FOR.get(settings.health_host, settings.health_host)
    netloc = f"[{host}]" if ":" in host else host
    return f"http://{netloc}:{settings.health_port}"


def fetch(base: str, path: str, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """GET ``base + path`` and return its JSON object; raise ``NoAnswer`` with one line."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy
    try:
        with opener.open(base + path, timeout=timeout_s) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        raise NoAnswer(_refusal(base, path, exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        why = getattr(exc, "reason", exc)
        raise NoAnswer(
            f"no daemon answers at {base} ({_describe(why)}): is it running, and is that its "
            "HTTP service (HEALTH_HOST and HEALTH_PORT in its settings, or --url)?"
        ) from None
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise NoAnswer(f"{base}{path} did not answer JSON: is that paper-trader's HTTP service?")
    return value


def _refusal(base: str, path: str, exc: urllib.error.HTTPError) -> str:
    """Return the line for an HTTP error answer (503: the daemon is starting)."""
    try:
        error = json.loads(exc.read()).get("error")
    except (ValueError, AttributeError, OSError):
        error = None
    if exc.code == 503 and error:
        return f"the daemon at {base} is not ready: {error}; try again in a moment"
    return f"{base}{path} answered HTTP {exc.code}: is that paper-trader's HTTP service?"


def _describe(why: object) -> str:
    if isinstance(why, ConnectionRefusedError):
        return "connection refused"
    if isinstance(why, TimeoutError):
        return f"no answer within {TIMEOUT_S:g} s"
    return str(why) or type(why).__name__


def status_command(settings: Settings, args: argparse.Namespace) -> int:
    """Print the running daemon's summary (or its JSON); return the exit code."""
    base = args.url or daemon_url(settings)
    try:
        answer = fetch(base, "/api/status")
        positions = fetch(base, "/api/positions").get("positions", [])
    except NoAnswer as exc:
        sys.stderr.write(f"paper-trader: {exc}\n")
        return EXIT_NO_DAEMON
    if args.json:
        whole = {"url": base, **answer, "positions": positions}
        sys.stdout.write(json.dumps(whole, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(summary(base, answer, positions)) + "\n")
    return 0


def summary(base: str, answer: dict[str, Any], positions: list[dict[str, Any]]) -> list[str]:
    """Return the human summary of ``/api/status``'s answer and the open positions."""
    status, health = answer["status"], answer.get("health")
    drawdown = Decimal(str(status["drawdown"])) * 100
    lines = [f"paper-trader at {base}", f"trading      {status['state']}"]
    for trip in status["tripped"]:
        where = f" {trip['symbol']}" if trip.get("symbol") else ""
        lines.append(f"  tripped    {trip['breaker']}{where}: {trip['reason']}")
    lines += [
        f"equity       {_money(status['equity'])} (cash {_money(status['cash'])}, peak "
        f"{_money(status['peak_equity'])}, drawdown {drawdown.quantize(_CENT)} %)",
        f"entries      {status['entered']} made, {status['rejected']} refused, "
        f"{status['skipped']} skipped on stale candles",
        f"positions    {len(positions)} open",
        *(_position(p) for p in positions),
        *_health(health),
        f"last candle  {_candle(status.get('last_candle_ms'))}",
    ]
    return lines


def _position(view: dict[str, Any]) -> str:
    held = view["position"]
    pnl, pct = Decimal(view["unrealised_pnl"]), Decimal(view["unrealised_pct"])
    sign = "+" if pnl >= 0 else ""
    return (
        f"  {held['symbol']:<10} {held['side']} {_plain(held['quantity'])} @ "
        f"{_price(held['entry_price'])}, mark {_price(view['mark'])}, unrealised "
        f"{sign}{pnl.quantize(_CENT)} ({sign}{pct.quantize(_CENT)} %), "
        f"stop {_price(view['stop'])} ({view['stop_reason']})"
    )


def _health(health: dict[str, Any] | None) -> list[str]:
    if health is None:
        return ["health       not checked yet"]
    line = f"health       {health['score']}/100 {health['level']} ({health['status']})"
    if health.get("reason"):
        line += f": {health['reason']}"
    problems = health.get("problems") or []
    return [line, *(f"  {p['status']:<10} {p['component']}: {p['detail']}" for p in problems)]


def _candle(open_ms: object) -> str:
    if not isinstance(open_ms, int):
        return "none yet"
    return f"{iso_ms(open_ms)} (open time, UTC)"


def _money(text: str) -> str:
    return str(Decimal(text).quantize(_CENT))


def _price(text: str) -> str:
    """Return a price to six significant digits, with at least two decimals."""
    value = Decimal(text)
    if not value:
        return "0.00"
    places = max(2, _PRICE_DIGITS - 1 - value.adjusted())
    return str(value.quantize(Decimal(1).scaleb(-places)))


def _plain(text: str) -> str:
    """Return a price or quantity without trailing zeros, never in exponent form."""
    value = Decimal(text)
    return format(value.normalize(), "f") if value else "0"
