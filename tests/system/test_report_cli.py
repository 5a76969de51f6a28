"""``report``: a short table for people by default, ``--json`` the whole summary for scripts,
both with the Monte Carlo of the closed trades."""

import json
from decimal import Decimal
from pathlib import Path

from conftest import subprocess_env
from daemon_harness import run_cli
from fakes.control_rig import open_and_close, running_rig
from fakes.trading import MINUTE, T0


async def ledger_of_three_trades(directory: Path) -> Path:
    """Write a ledger of three closed trades (two won, one lost) in ``directory``; return its
    database."""
    async with running_rig(directory) as rig:
        await open_and_close(rig, "BTCUSDT", T0, "100", "104")
        await open_and_close(rig, "ETHUSDT", T0 + 2 * MINUTE, "100", "99")
        await open_and_close(rig, "SOLUSDT", T0 + 4 * MINUTE, "100", "102")
    return directory / "paper_trader.db"


def _money(value: object) -> str:
    return f"{Decimal(str(value)):,.2f}"


async def test_report_prints_a_table_and_json_with_the_monte_carlo(tmp_path: Path) -> None:
    """The table says trades, PnL, win rate, drawdown, breakers and the percentiles; --json
    holds the same figures, the Monte Carlo among them."""
    db = await ledger_of_three_trades(tmp_path)
    env = subprocess_env(tmp_path)
    table = run_cli(["report", "--db", str(db)], env)
    data = run_cli(["report", "--db", str(db), "--json"], env)
    assert table.returncode == 0, table.stderr[-3000:]
    assert data.returncode == 0, data.stderr[-3000:]
    summary = json.loads(data.stdout)
    mc, analytics = summary["monte_carlo"], summary["analytics"]
    assert (mc["runs"], mc["trades"], mc["initial_equity"]) == (1000, 3, "10000")
    final, drawdown = mc["final_equity"], mc["max_drawdown"]
    assert final["p5"] <= final["p50"] <= final["p95"]
    assert 0 <= drawdown["p5"] <= drawdown["p50"] <= drawdown["p95"] < 1
    assert summary["breakers_tripped"] == {}
    lines = table.stdout.splitlines()
    rows = {line[:15].rstrip(): line[15:] for line in lines[1:]}
    assert lines[0] == f"paper-trader report of {db}"
    assert rows["trades"] == "3 closed: 2 won, 1 lost · 0 open"
    assert rows["PnL"].startswith(f"{Decimal(analytics['net_pnl']):+,.2f} on the closed trades")
    assert rows["win rate"] == "66.67 %"
    assert rows["max drawdown"].startswith(f"{100 * analytics['max_drawdown']:.2f} %")
    assert rows["breakers"] == "0 trips · trading active"
    assert rows["Monte Carlo"] == "1,000 runs resampling the 3 closed trades (seed 18)"
    assert rows["  final equity"].split() == [
        "p5", _money(final["p5"]), "p50", _money(final["p50"]), "p95", _money(final["p95"])
    ]  # fmt: skip
    assert rows["  max drawdown"].split() == [
        "p5", f"{100 * drawdown['p5']:.2f}", "%", "p50", f"{100 * drawdown['p50']:.2f}", "%",
        "p95", f"{100 * drawdown['p95']:.2f}", "%",
    ]  # fmt: skip
    assert rows["ledger digest"] == summary["ledger_digest"]


async def test_monte_carlo_runs_zero_turns_it_off_in_both(tmp_path: Path) -> None:
    """MONTE_CARLO_RUNS=0: null in the JSON, "off" in the table."""
    db = await ledger_of_three_trades(tmp_path)
    env = subprocess_env(tmp_path, MONTE_CARLO_RUNS="0")
    table = run_cli(["report", "--db", str(db)], env)
    data = run_cli(["report", "--db", str(db), "--json"], env)
    assert json.loads(data.stdout)["monte_carlo"] is None
    assert "Monte Carlo    off (MONTE_CARLO_RUNS=0)" in table.stdout.splitlines()
