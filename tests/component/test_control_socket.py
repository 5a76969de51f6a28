"""The control socket: a real trading stage, Control and SQLite file, a real Unix socket."""

import asyncio
import contextlib
import dataclasses
import json
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.control_rig import Rig, buy, config, running_rig
from fakes.trading import MINUTE, T0, bar

from paper_trader.interfaces.control_socket import (
    ControlSocket,
    DaemonUnreachable,
    request,
    socket_path,
)
from paper_trader.runtime.service import Readiness
from paper_trader.storage.ledger_repository import breaker_history


@contextlib.asynccontextmanager
async def serving(rig: Rig, tmp_path: Path) -> AsyncIterator[Path]:
    """Serve the rig's Control on ``paper_trader.db.sock``; stop the service afterwards."""
    service = ControlSocket(rig.control, socket_path(tmp_path / "paper_trader.db"))
    ready = Readiness()
    task = asyncio.create_task(service.run(ready), name="control_socket")
    await asyncio.wait_for(ready.wait(), timeout=10)
    try:
        yield service.path
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def ask(path: Path, **message: Any) -> dict[str, Any]:
    """Send one request from a thread (the client blocks; the server runs on this loop)."""
    return await asyncio.to_thread(request, path, message)


async def test_resume_over_the_socket_lifts_a_max_drawdown_halt_and_trading_resumes(
    tmp_path: Path,
) -> None:
    """A stop-loss takes equity 1 % below its peak: HALTED; `resume` makes it ACTIVE again."""
    rules = config()
    rules = dataclasses.replace(
        rules, breakers=dataclasses.replace(rules.breakers, max_drawdown=0.01)
    )
    async with running_rig(tmp_path, rules) as rig, serving(rig, tmp_path) as path:
        await rig.feed([bar("BTCUSDT", T0, "100")], [buy("BTCUSDT", T0)])
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "97", open_="99", low="95")])
        halted = await ask(path, command="status")
        t2 = T0 + 2 * MINUTE
        await rig.feed([bar("BTCUSDT", t2, "97")], [buy("BTCUSDT", t2)])
        refused = (await rig.control.recent_signals(limit=1))[-1]
        resumed = await ask(path, command="resume")
        t3 = T0 + 3 * MINUTE
        await rig.feed([bar("BTCUSDT", t3, "97")], [buy("BTCUSDT", t3)])
        active = await ask(path, command="status")
        stored = await breaker_history(rig.reader, limit=10)

    assert halted["ok"]
    assert halted["status"]["state"] == "halted"
    assert [t["breaker"] for t in halted["status"]["tripped"]] == ["max_drawdown"]
    assert (refused.action.value, refused.rule) == ("rejected", "trading_state")
    assert resumed["ok"] is True
    assert [(t["breaker"], t["tripped"], t["state"]) for t in resumed["transitions"]] == [
        ("max_drawdown", False, "active")
    ]
    assert resumed["message"].startswith("resumed: cleared max_drawdown")
    assert active["status"]["state"] == "active"
    assert active["status"]["open_positions"] == 1
    [held] = active["positions"]
    assert held["position"]["symbol"] == "BTCUSDT"
    assert [(t.breaker, t.tripped) for t in stored][-2:] == [
        ("max_drawdown", True),
        ("max_drawdown", False),
    ]


async def test_pause_close_and_emergency_stop_over_the_socket_are_committed(
    tmp_path: Path,
) -> None:
    """Each command answers with what it changed, already in SQLite."""
    async with running_rig(tmp_path) as rig, serving(rig, tmp_path) as path:
        await rig.feed(
            [bar("BTCUSDT", T0, "100"), bar("ETHUSDT", T0, "50")],
            [buy("BTCUSDT", T0), buy("ETHUSDT", T0)],
        )
        await rig.feed([bar("BTCUSDT", T0 + MINUTE, "101"), bar("ETHUSDT", T0 + MINUTE, "51")])
        paused = await ask(path, command="pause", reason="news at 14:00")
        closed = await ask(path, command="close", symbol="ETHUSDT")
        unknown = await ask(path, command="close", symbol="DOGE-USDT")
        stopped = await ask(path, command="emergency_stop")
        trades = await rig.control.recent_trades()

    assert paused["ok"]
    assert paused["transitions"][0]["reason"] == "paused by the operator: news at 14:00"
    assert closed["ok"]
    assert [(t["symbol"], t["exit_reason"]) for t in closed["trades"]] == [("ETHUSDT", "manual")]
    assert unknown == {
        "ok": False,
        "message": "DOGE-USDT: no open position (held: BTCUSDT)",
        "transitions": [],
        "trades": [],
    }
    assert stopped["ok"]
    assert [(t["symbol"], t["exit_reason"]) for t in stopped["trades"]] == [
        ("BTCUSDT", "emergency_stop")
    ]
    assert [(t.symbol, t.exit_reason.value) for t in trades] == [
        ("ETHUSDT", "manual"),
        ("BTCUSDT", "emergency_stop"),
    ]


async def test_close_all_flattens_without_changing_the_trading_state(tmp_path: Path) -> None:
    """`close all` closes every position (manual) and leaves trading active."""
    async with running_rig(tmp_path) as rig, serving(rig, tmp_path) as path:
        await rig.feed(
            [bar("BTCUSDT", T0, "100"), bar("ETHUSDT", T0, "50")],
            [buy("BTCUSDT", T0), buy("ETHUSDT", T0)],
        )
        closed = await ask(path, command="close", symbol="all")
        status = await ask(path, command="status")

    assert closed["ok"]
    assert closed["message"].startswith("close all: closed 2 (BTCUSDT, ETHUSDT)")
    assert [t["exit_reason"] for t in closed["trades"]] == ["manual", "manual"]
    assert closed["transitions"] == []
    assert (status["status"]["state"], status["status"]["open_positions"]) == ("active", 0)


async def test_the_socket_is_private_refuses_bad_requests_and_is_removed_at_stop(
    tmp_path: Path,
) -> None:
    """Mode 0600; a bad request gets an error answer and the service keeps serving."""
    stale = socket_path(tmp_path / "paper_trader.db")
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(stale))  # what a kill -9 leaves behind
    leftover.close()
    async with running_rig(tmp_path) as rig:
        async with serving(rig, tmp_path) as path:
            mode = stat.S_IMODE(path.stat().st_mode)
            garbage = await asyncio.to_thread(_raw, path, b"not json\n")
            unknown = await ask(path, command="sell_everything")
            no_symbol = await ask(path, command="close")
            still = await ask(path, command="status")
        gone = not path.exists()

    assert mode == 0o600
    assert garbage["ok"] is False
    assert garbage["error"].startswith("not JSON")
    assert unknown == {
        "ok": False,
        "error": "unknown command; expected one of close, emergency_stop, pause, resume, status",
    }
    assert no_symbol == {"ok": False, "error": "close: 'symbol' must be a non-empty string"}
    assert still["ok"] is True
    assert gone


def test_no_daemon_is_one_clear_line(tmp_path: Path) -> None:
    """No socket, or a socket nobody listens on: DaemonUnreachable says no daemon is running."""
    path = socket_path(tmp_path / "paper_trader.db")
    with pytest.raises(DaemonUnreachable, match="no daemon is running on this database"):
        request(path, {"command": "status"})
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    with pytest.raises(DaemonUnreachable, match="no daemon is running on this database"):
        request(path, {"command": "status"})


def _raw(path: Path, data: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(data)
        answer: dict[str, Any] = json.loads(sock.makefile().readline())
        return answer
