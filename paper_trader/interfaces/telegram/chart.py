"""The equity curve as a PNG, drawn with matplotlib's Agg canvas.

Call it in an executor, never on the loop: drawing takes tens of milliseconds. It uses the
object-oriented API (a ``Figure`` on its own ``FigureCanvasAgg``), not ``pyplot``: no global
figure state, no GUI backend, safe to run in a worker thread.
"""

import io
from collections.abc import Sequence

import numpy as np

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.0, 100


def draw_equity_png(points: Sequence[tuple[int, float]], title: str) -> bytes:
    """Return a PNG of equity over candle time (UTC); ``points`` are (Unix ms, equity), in order."""
    # matplotlib takes ~0.5 s to import: only a process that draws a chart pays for it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    times = np.array([ms for ms, _ in points], dtype="datetime64[ms]")
    values = np.array([value for _, value in points], dtype=np.float64)
    axes.plot(times, values, color="#1f77b4", linewidth=1.5)
    if len(values):
        axes.fill_between(times, values, float(values.min()), color="#1f77b4", alpha=0.1)
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib.dates is untyped
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]  # likewise
    axes.xaxis.set_major_formatter(formatter)
    axes.set_title(title)
    axes.set_ylabel("equity")
    axes.grid(visible=True, alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
