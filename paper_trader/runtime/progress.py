"""A one-line progress bar for the command-line chores: drawn on a terminal, silent otherwise."""

from typing import TextIO

WIDTH = 25


class ProgressBar:
    """Redraw ``[#####    ]  40%  text`` in place whenever the whole percentage changes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._shown = -1

    def show(self, done: int, total: int, text: str) -> None:
        """Show ``done`` of ``total`` with a short description."""
        if not self._enabled:
            return
        percent = max(0, min(100, done * 100 // max(1, total)))
        if percent != self._shown:
            self._shown = percent
            bar = "#" * (percent * WIDTH // 100)
            self._stream.write(f"\r[{bar:<{WIDTH}}] {percent:3d}%  {text}")
            self._stream.flush()

    def done(self) -> None:
        """End the line, if a bar was drawn."""
        if self._enabled and self._shown >= 0:
            self._stream.write("\n")
            self._stream.flush()
