"""The benchmarks' results table: ``bench/results.md``, and the same table in README.

Each benchmark run with ``--json FILE`` writes its figures there with a ``rows`` list: one row
per measure, with the figure, the goal (or ``null``), whether it is met (or ``null`` when the
measure has no goal), the method in one sentence and the command that reproduces it
(``row()`` below makes one). ``make bench`` writes the files to ``bench/results/`` and then
runs this script, which renders every row of every file into ``bench/results.md`` with the
machine and the date of the run, and replaces README's table (between the two marker comments)
with the same rows. A benchmark that did not run leaves no file and no row.

    .venv/bin/python bench/results.py [--dir bench/results] [--out bench/results.md]
        [--readme README.md]
"""

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- bench-results:begin (bench/results.py writes this table; edit that, not this) -->"
END = "<!-- bench-results:end -->"
ORDER = (
    "features", "pipeline", "stages", "floor", "live", "monitor", "writer", "retrain", "soak",
    "crash", "fuzz",
)  # fmt: skip


def row(
    measure: str, figure: str, *, goal: str | None, met: bool | None, method: str, command: str
) -> dict[str, Any]:
    """Return one row of the results table, as a benchmark's ``--json`` file holds it."""
    return {
        "measure": measure,
        "figure": figure,
        "goal": goal,
        "met": met,
        "method": method,
        "command": command,
    }


def machine_line() -> str:
    """Return the machine the figures were measured on, in one line."""
    cpus = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {cpus} usable CPUs ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"load average when the table was written {load}"
    )


def _verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**not met**")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: list[dict[str, Any]]) -> str:
    """Return the rows as a Markdown table."""
    lines = [
        "| measure | figure | goal | verdict | method | command |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = (r["measure"], r["figure"], r["goal"] or "—", _verdict(r["met"]), r["method"])
        command = f"`{r['command']}`"
        lines.append("| " + " | ".join(_cell(c) for c in cells) + f" | {command} |")
    return "\n".join(lines)


def collect(directory: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Return every row of the result files in ``directory`` and the files' run dates."""
    files = sorted(directory.glob("*.json"), key=_rank)
    rows: list[dict[str, Any]] = []
    dates = []
    for path in files:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows.extend(data.get("rows", []))
        stamp = datetime.datetime.fromtimestamp(path.stat().st_mtime, tz=datetime.UTC)
        dates.append(f"{path.stem} {stamp:%Y-%m-%d %H:%M} UTC")
    return rows, dates


def _rank(path: Path) -> tuple[int, str]:
    return (ORDER.index(path.stem) if path.stem in ORDER else len(ORDER), path.stem)


def render(rows: list[dict[str, Any]], dates: list[str]) -> str:
    """Return ``bench/results.md``."""
    return "\n".join(
        [
            "# Benchmark results",
            "",
            "Written by `make bench` (`bench/results.py`); every figure comes from the run of",
            "the command in its row. Timings on a shared machine are noisy: each benchmark",
            "prints the load average it ran under.",
            "",
            f"Machine: {machine_line()}.",
            "",
            "Runs: " + "; ".join(dates) + ".",
            "",
            table(rows),
            "",
        ]
    )


def update_readme(readme: Path, rows: list[dict[str, Any]]) -> bool:
    """Replace README's table between the markers; return whether the markers were found."""
    if not readme.exists():
        return False
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return False
    new = text[: start + len(BEGIN)] + "\n" + table(rows) + "\n" + text[end:]
    readme.write_text(new, encoding="utf-8")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.md")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    rows, dates = collect(args.dir)
    if not rows:
        raise SystemExit(f"no benchmark results in {args.dir}: run the benchmarks with --json")
    args.out.write_text(render(rows, dates), encoding="utf-8")
    found = update_readme(args.readme, rows)
    print(f"{len(rows)} rows from {len(dates)} benchmarks written to {args.out}")
    if not found:
        print(f"{args.readme} has no results markers: its table was left as it is")


if __name__ == "__main__":
    main()
