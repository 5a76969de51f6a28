"""The soak's figures against their goals, its CSV, and its plot: RSS, the database's size and the
event loop's lag over simulated time (``bench/soak.py``)."""

import argparse
import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from results import row

DAY_HOURS = 24
RSS_GROWTH_GOAL_PCT = 5.0
DB_GROWTH_GOAL_PCT = 5.0
COUNTS = ("open_fds", "threads", "tasks")
COMMAND = ".venv/bin/python bench/soak.py"


def plot(samples: Sequence[dict[str, Any]], path: Path, *, title: str) -> None:
    """Draw three panels over simulated days and save them as a PNG."""
    days = [s["hour"] / 24 for s in samples]
    panels = (
        ("rss_mb", "RSS (MB)", "tab:blue"),
        ("db_mb", "database (MB)", "tab:green"),
        ("loop_lag_p99_ms", "loop lag p99 (ms)", "tab:red"),
    )
    figure, axes = plt.subplots(len(panels), 1, sharex=True, figsize=(9, 7), dpi=100)
    for axis, (key, label, colour) in zip(axes, panels, strict=True):
        axis.plot(days, [s[key] for s in samples], color=colour, linewidth=1.2)
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
        for day in range(1, int(max(days)) + 1):
            axis.axvline(day, color="grey", linewidth=0.5, alpha=0.4)
    axes[0].set_title(f"paper-trader soak: {title}, sampled every simulated hour")
    axes[-1].set_xlabel("simulated days of live 1m candles")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def verdicts(samples: list[dict[str, Any]], outbox: dict[str, Any] | None) -> dict[str, Any]:
    """Return the figures against their goals: RSS growth after day 1, counts, database size,
    and the outbox: its largest backlog and whether it was all delivered after the market."""
    day1 = samples[DAY_HOURS - 1]
    later = samples[DAY_HOURS:]
    rss_growth = (samples[-1]["rss_mb"] - day1["rss_mb"]) / day1["rss_mb"] * 100
    days = [(s["hour"] - day1["hour"]) / DAY_HOURS for s in later]
    slope = _slope(days, [s["rss_mb"] for s in later])
    # A leak ratchets: the last day's floor rises above the first day's ceiling. A retraining's
    # pipes and tasks come and go (they lift a count's maximum, not its floor).
    counts = {
        name: {
            "first_day_max": max(s[name] for s in samples[:DAY_HOURS]),
            "last_day_min": min(s[name] for s in samples[-DAY_HOURS:]),
            "later_max": max(s[name] for s in later),
        }
        for name in COUNTS
    }
    last_day = samples[-DAY_HOURS:]
    db_growth = (last_day[-1]["db_mb"] - last_day[0]["db_mb"]) / last_day[0]["db_mb"] * 100
    return {
        "rss_day1_mb": day1["rss_mb"],
        "rss_end_mb": samples[-1]["rss_mb"],
        "rss_max_mb": max(s["rss_mb"] for s in samples),
        "rss_growth_pct": round(rss_growth, 2),
        "rss_slope_mb_per_day": round(slope, 2),
        "rss_met": rss_growth < RSS_GROWTH_GOAL_PCT,
        "counts": counts,
        "counts_met": all(c["last_day_min"] <= c["first_day_max"] for c in counts.values()),
        "db_mb_by_day": [s["db_mb"] for s in samples[DAY_HOURS - 1 :: DAY_HOURS]],
        "db_last_day_growth_pct": round(db_growth, 2),
        "db_met": db_growth < DB_GROWTH_GOAL_PCT,
        "loop_lag_p99_ms_max": max(s["loop_lag_p99_ms"] for s in samples),
        "outbox_max": max(s["outbox_pending"] for s in samples),
        "outbox": outbox,
        "outbox_met": None if outbox is None else outbox["left"] == 0,
    }


def _slope(x: list[float], y: list[float]) -> float:
    """Return the least-squares slope of ``y`` over ``x``."""
    mx, my = sum(x) / len(x), sum(y) / len(y)
    var = sum((a - mx) ** 2 for a in x)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / var if var else 0.0


def result_rows(args: argparse.Namespace, v: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the rows of ``bench/results.md``."""
    method = (
        f"run_paper_trader.py run, {args.symbols} symbols x {args.days} simulated days of 1m "
        f"candles on the simulator at x{args.speed:g}, a model, retraining every 600 s, Telegram "
        f"fake, {args.clients} status-feed clients, retention of a day; sampled every "
        "simulated hour"
    )
    counts = ", ".join(
        f"{name} {c['first_day_max']} / {c['last_day_min']} (max {c['later_max']})"
        for name, c in v["counts"].items()
    )
    drained = v["outbox"]
    outbox = (
        "not measured (samples from a CSV)"
        if drained is None
        else f"{drained['pending_at_end']} waiting at the end (at most {v['outbox_max']}), "
        f"{drained['left']} left {drained['drain_s']:g} s after the market; "
        f"{drained['telegram_messages']} messages delivered in all"
    )
    db_by_day = ", ".join(f"{mb:.0f}" for mb in v["db_mb_by_day"])
    figures = [
        (
            "soak: RSS growth after the first simulated day",
            f"{v['rss_growth_pct']:+.1f} % ({v['rss_day1_mb']:.0f} -> {v['rss_end_mb']:.0f} MB, "
            f"slope {v['rss_slope_mb_per_day']:+.2f} MB/day, max {v['rss_max_mb']:.0f})",
            f"< {RSS_GROWTH_GOAL_PCT:g} %",
            v["rss_met"],
        ),
        (
            "soak: counts, first day's max / last day's min",
            counts,
            "none grows (last day's min <= first day's max)",
            v["counts_met"],
        ),
        (
            "soak: database size over the last simulated day",
            f"{v['db_last_day_growth_pct']:+.1f} % (MB at each day's end: {db_by_day})",
            f"bounded (< {DB_GROWTH_GOAL_PCT:g} % a day once retention bites)",
            v["db_met"],
        ),
        (
            "soak: notifications waiting, and delivered after the market",
            outbox,
            "every one delivered (Telegram's pace is the wall clock's, not the soak's)",
            v["outbox_met"],
        ),
    ]
    return [
        row(measure, figure, goal=goal, met=met, method=method, command=COMMAND)
        for measure, figure, goal, met in figures
    ]


def write_csv(samples: list[dict[str, Any]], path: Path) -> None:
    """Write the hourly samples as a CSV, one row an hour."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
