"""Fuzzing every decoder of outside input with a million inputs each (``make proof``).

Method. The decoders and their input shapes are ``tests/fakes/fuzz_targets.py``, the same the
unit tests fuzz (``tests/unit/test_fuzz_decoders.py``): each venue's WebSocket frames (parse,
then every update to a candle) and REST answers (rate signal, then the klines or time
decoder), the REST client's body and header decoding, the candle CSV reader (each input a
file on tmpfs where there is one), Telegram command arguments (the real commands, stopped at
their first call into the daemon), status-feed client messages and handshakes, control-socket
requests and HTTP API queries. Each decoder must answer or raise exactly the refusals it
documents; any other exception is counted, its first input of each kind kept, and the run
exits 1.

Engines. ``mutate`` (the default): ``--seeds`` inputs drawn by hypothesis from the target's
strategy, then mutants of them up to ``--inputs`` in all (``fakes/fuzz_engine.py``: a seeded,
in-process, structure-aware mutation fuzzer; its feedback is each input's outcome, not
coverage). ``hypothesis``: every input drawn by hypothesis (generate phase, no database);
fifty to a hundred times slower here, so run it with ``--inputs`` in the thousands to measure
its rate, not for the million (that would take a day). The same ``--seed`` gives the same
inputs.

    .venv/bin/python bench/fuzz.py [--inputs 1000000] [--seeds 1000] [--seed 0]
        [--engine mutate|hypothesis] [--only NAME ...] [--json FILE]
"""

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.fuzz_engine import Outcome, draw_seeds, run_hypothesis, run_mutations  # noqa: E402
from fakes.fuzz_targets import Target, targets  # noqa: E402
from results import row  # noqa: E402

GOAL_INPUTS = 1_000_000
COMMAND = ".venv/bin/python bench/fuzz.py"


def fuzz_one(target: Target, args: argparse.Namespace) -> Outcome:
    """Run one target with the chosen engine; return its tally."""
    outcome = Outcome(target.name)
    if args.engine == "hypothesis":
        run_hypothesis(target, args.inputs, args.seed, outcome)
        return outcome
    started = time.perf_counter()
    seeds = draw_seeds(target, min(args.seeds, args.inputs), args.seed)
    outcome.seconds += time.perf_counter() - started
    rng = random.Random(f"{args.seed}:{target.name}")
    run_mutations(target, seeds, args.inputs, rng, outcome)
    return outcome


def print_outcome(outcome: Outcome) -> None:
    failures = sum(outcome.failures.values())
    print(
        f"  {outcome.name:<18}{outcome.inputs:>11,}{outcome.accepted:>11,}{outcome.refused:>11,}"
        f"{failures:>8,}{outcome.seconds:>9.1f}{outcome.inputs / outcome.seconds:>10,.0f}",
        flush=True,
    )
    for sample in outcome.samples:
        print(f"      {sample['error']}\n        input {sample['input'][:160]}")


def summary(outcomes: list[Outcome]) -> tuple[str, bool]:
    """Return the figure and whether the goal is met."""
    failures = sum(sum(o.failures.values()) for o in outcomes)
    fewest = min(o.inputs for o in outcomes)
    seconds = sum(o.seconds for o in outcomes)
    rates = sorted(o.inputs / o.seconds for o in outcomes)
    figure = (
        f"{len(outcomes)} decoders, at least {fewest:,} inputs each: {failures:,} undocumented "
        f"exceptions; {rates[0]:,.0f}-{rates[-1]:,.0f} inputs/s, {seconds / 60:.1f} min in all"
    )
    return figure, failures == 0 and fewest >= GOAL_INPUTS


def result_rows(outcomes: list[Outcome], args: argparse.Namespace) -> list[dict[str, Any]]:
    figure, met = summary(outcomes)
    return [
        row(
            "fuzzing, every decoder of outside input",
            figure,
            goal=f"≥ {GOAL_INPUTS:,} inputs per decoder, 0 undocumented exceptions",
            met=met,
            method=f"engine {args.engine}: {args.seeds:,} hypothesis-drawn seeds per decoder, "
            "then seeded structure-aware mutants of them (tests/fakes/fuzz_engine.py)"
            if args.engine == "mutate"
            else "engine hypothesis: every input drawn from the decoder's strategy",
            command=COMMAND if args.inputs == GOAL_INPUTS else f"{COMMAND} --inputs {args.inputs}",
        )
    ]


def scratch_dir() -> str | None:
    """Return tmpfs for the CSV target's file where there is one (no disk in the figure)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=GOAL_INPUTS, help="inputs per decoder")
    parser.add_argument("--seeds", type=int, default=1_000, help="hypothesis-drawn seeds")
    parser.add_argument("--seed", type=int, default=0, help="the run's seed")
    parser.add_argument("--engine", choices=("mutate", "hypothesis"), default="mutate")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these decoders only")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    started = time.perf_counter()
    load = [round(x, 2) for x in os.getloadavg()]
    print(f"{args.engine}: {args.inputs:,} inputs per decoder, seed {args.seed}, load {load}")
    print(f"  {'decoder':<18}{'inputs':>11}{'accepted':>11}{'refused':>11}{'other':>8}"
          f"{'s':>9}{'inputs/s':>10}")  # fmt: skip
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-", dir=scratch_dir()) as work:
        for target in targets(Path(work)):
            if args.only and target.name not in args.only:
                continue
            outcomes.append(fuzz_one(target, args))
            print_outcome(outcomes[-1])
    if not outcomes:
        parser.error(f"no decoder is named {args.only}")
    figure, met = summary(outcomes)
    print(f"\n{figure}\ngoal ≥ {GOAL_INPUTS:,} inputs per decoder with 0 undocumented "
          f"exceptions: {'met' if met else 'NOT MET'}")  # fmt: skip
    if args.json:
        results = {
            "engine": args.engine,
            "seed": args.seed,
            "inputs_per_decoder": args.inputs,
            "loadavg_start": load,
            "seconds": round(time.perf_counter() - started, 1),
            "decoders": [o.as_json() for o in outcomes],
            "rows": result_rows(outcomes, args),
        }
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 1 if any(o.failures for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
