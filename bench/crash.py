"""The crash campaign of ``make proof``: ``--kills`` (20) ``kill -9`` at random moments of a live
run, each followed by a start on the same database, against an uninterrupted run.

Method. ``tests/system/crash_campaign.py`` (the code ``make test``'s three-kill version runs):
the simulated exchange (``python -m paper_trader.simulator``, x300: a minute every 0.2 s)
serves two symbols of synthetic 1m candles, 700 of history then a live part long enough to go
on moving through the kills, with a halt (ETH: 70 flat zero-volume candles) and 6 candles the
venue never had (BTC), and with every fault it has on (drops, silences, ``serverShutdown``,
duplicates, reordering, garbage, lost final frames, REST 429/418/5xx). ``run_paper_trader.py
run`` trades it with a model, Telegram pointed at the fake Bot API server. Each round starts
the daemon and sends it SIGKILL a seeded random 0.5-9 s later: before it is ready, during its
REST warm-up, while it catches up on the candles of its downtime, or while live. After the last
kill it runs until its ledger has handled the whole market and every notification is sent, and
stops with SIGTERM. Then the same market without faults, uninterrupted. Compared: the ledger
digest (``report``), every fill, every decision, the ledger's own notifications; every outbox
row delivered, possible repeats at most one per kill.

    .venv/bin/python bench/crash.py [--kills 20] [--seed 1] [--json FILE]
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH.parent / "tests"), str(BENCH.parent / "tests/system")]

from crash_campaign import Outcome, Plan, run_campaign, same_ledger  # noqa: E402
from pipeline import machine  # noqa: E402
from results import row  # noqa: E402

COMMAND = ".venv/bin/python bench/crash.py"


def verdicts(outcome: Outcome, parts: dict[str, bool]) -> dict[str, bool]:
    """Return each thing the campaign must show, and whether it did."""
    kills = outcome.plan.kills
    return {
        "ledger digest equals the uninterrupted run's": outcome.crashed["ledger_digest"]
        == outcome.clean["ledger_digest"],
        "every candle stored, as the venue had it": parts["candles"],
        "every fill, none lost or doubled": parts["fills"] and outcome.fills[0] == outcome.fills[1],
        "every decision": parts["decisions"],
        "the ledger's notifications": parts["ledger notices"],
        "every notification delivered": all(r.status == "sent" for r in outcome.deliveries),
        f"possible repeats <= {kills}": outcome.possible_repeats <= kills,
    }


def summary(outcome: Outcome, checks: dict[str, bool]) -> dict[str, Any]:
    """Return the campaign's figures as ``--json`` writes them."""
    moments = outcome.kill_moments
    before_ready = sum(not m["ready"] for m in moments)
    figure = (
        f"{len(moments)} kills ({before_ready} before READY=1, "
        f"{sum(bool(m['decided']) for m in moments)} after deciding candles): "
        f"{'all' if all(checks.values()) else 'NOT all'} of digest, fills, decisions and "
        f"notifications equal; {outcome.crashed['trades']} trades, {outcome.fills[0]} fills, "
        f"{len(outcome.deliveries)} notifications delivered, "
        f"{outcome.possible_repeats} marked as possible repeats"
    )
    method = (
        "2 symbols x300 on the simulator with every fault on, a halt and missing candles; "
        "SIGKILL a seeded random 0.5-9 s after each start, then a start on the same database; "
        "compared with an uninterrupted run of the same market"
    )
    goal = f"the uninterrupted run's digest, fills and notices; repeats <= {outcome.plan.kills}"
    return {
        "machine": machine(),
        "plan": {"kills": outcome.plan.kills, "seed": outcome.plan.seed, "live": outcome.plan.live},
        "kill_moments": moments,
        "checks": checks,
        "crashed": {k: outcome.crashed[k] for k in ("trades", "final_equity", "ledger_digest")},
        "clean": {k: outcome.clean[k] for k in ("trades", "final_equity", "ledger_digest")},
        "fills": list(outcome.fills),
        "notifications": len(outcome.deliveries),
        "messages": outcome.messages,
        "possible_repeats": outcome.possible_repeats,
        "seconds": outcome.seconds,
        "rows": [
            row(
                "crash campaign: kill -9 at random moments of a live run",
                figure,
                goal=goal,
                met=all(checks.values()),
                method=method,
                command=COMMAND,
            )
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", type=Path, help="run in this directory and keep it")
    args = parser.parse_args()
    plan = Plan(kills=args.kills, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="crash-") as scratch:
        work = args.keep or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        outcome = run_campaign(work, plan, say=lambda line: print(line, flush=True))
        checks = verdicts(outcome, same_ledger(work))
    result = summary(outcome, checks)
    print(f"machine: {result['machine']}")
    for what, ok in checks.items():
        print(f"  {'ok ' if ok else 'NOT'} {what}")
    print(f"{result['rows'][0]['figure']} ({outcome.seconds} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
