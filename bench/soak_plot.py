"""The soak's plot: RSS, the database's size and the event loop's lag over simulated time."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


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
