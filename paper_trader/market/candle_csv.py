"""The candle CSV format: recorded candles of one venue, symbol and interval.

The format is the one of ``download`` and of common candle exports:
``timestamp_ms,open,high,low,close,volume`` (UTC open time in ms, ascending, one header line
optional). A file is validated completely before anything is replayed, so a bad row is
reported with its line number and nothing is half-written.
"""

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from paper_trader.domain import Candle, Interval, Venue
from paper_trader.errors import CannotProceed, DataIntegrityError

HEADER = ("timestamp_ms", "open", "high", "low", "close", "volume")
MAX_REPORTED_PROBLEMS = 10
MAX_OPEN_TIME_MS = 2**63 - 1  # the most the candle table's INTEGER holds


class CandleCsv:
    """A candle CSV file for one venue, symbol and interval."""

    def __init__(self, path: Path, *, venue: Venue, symbol: str, interval: Interval) -> None:
        self.path = path
        self.venue = venue
        self.symbol = symbol
        self.interval = interval

    def validate(self) -> int:
        """Check every row and return how many there are.

        Raise ``DataIntegrityError`` listing the first bad lines, one line of its message each.
        """
        problems: list[str] = []
        rows = 0
        for line_no, parsed in self._rows():
            if isinstance(parsed, str):
                problems.append(f"{self.path}:{line_no}: {parsed}")
                if len(problems) >= MAX_REPORTED_PROBLEMS:
                    problems.append(f"{self.path}: stopped after the first {len(problems)}")
                    break
                continue
            rows += 1
        if problems:
            raise DataIntegrityError("\n".join(f"bad candle file: {p}" for p in problems))
        if rows == 0:
            raise DataIntegrityError(f"bad candle file: {self.path}: no candle rows")
        return rows

    def chunks(self, size: int) -> Iterator[list[Candle]]:
        """Yield the candles in lists of up to ``size``; stop at the first bad row with an error."""
        chunk: list[Candle] = []
        for line_no, parsed in self._rows():
            if isinstance(parsed, str):
                raise DataIntegrityError(f"bad candle file: {self.path}:{line_no}: {parsed}")
            chunk.append(parsed)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    def _rows(self) -> Iterator[tuple[int, Candle | str]]:
        """Yield ``(line number, candle or problem)`` for every data line."""
        previous: int | None = None
        try:
            # A byte that is not UTF-8 reads as U+FFFD: its row is reported, with its line.
            handle = self.path.open(encoding="utf-8", errors="replace", newline="")
        except OSError as exc:
            raise CannotProceed(f"cannot read {self.path}: {exc.strerror}") from None
        with handle:
            for line_no, line in enumerate(handle, start=1):
                text = line.strip()
                if not text:
                    continue
                fields = [f.strip() for f in text.split(",")]
                if line_no == 1 and not fields[0].lstrip("-").isdigit():
                    if tuple(f.lower() for f in fields) != HEADER:
                        yield line_no, f"header must be {','.join(HEADER)}, found {text[:80]!r}"
                    continue
                parsed = self._parse(fields, previous)
                if isinstance(parsed, Candle):
                    previous = parsed.open_time_ms
                yield line_no, parsed

    def _parse(self, fields: list[str], previous: int | None) -> Candle | str:
        if len(fields) != len(HEADER):
            return f"expected {len(HEADER)} fields ({','.join(HEADER)}), found {len(fields)}"
        open_time = self._open_time(fields[0], previous)
        if isinstance(open_time, str):
            return open_time
        values = _decimals(fields[1:])
        if isinstance(values, str):
            return values
        open_, high, low, close, volume = values
        return Candle(
            venue=self.venue,
            symbol=self.symbol,
            interval=self.interval,
            open_time_ms=open_time,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
        )

    def _open_time(self, text: str, previous: int | None) -> int | str:
        if not (text.isascii() and text.isdigit()):  # "²" is a digit to isdigit(), not to int()
            return f"timestamp_ms {text!r} is not a whole number of milliseconds"
        if len(text) > 20 or int(text) > MAX_OPEN_TIME_MS:
            return f"timestamp_ms {text[:40]!r} is past {MAX_OPEN_TIME_MS}"
        open_time = int(text)
        if open_time % self.interval.ms:
            return f"timestamp_ms {open_time} is not aligned to the {self.interval} interval"
        if previous is not None and open_time <= previous:
            word = "duplicates" if open_time == previous else "goes back before"
            return f"timestamp_ms {open_time} {word} the previous row ({previous})"
        return open_time


def _decimals(fields: list[str]) -> list[Decimal] | str:
    """Parse the price and volume fields, or say what is wrong with the first bad one."""
    values: list[Decimal] = []
    for name, text in zip(HEADER[1:], fields, strict=True):
        try:
            value = Decimal(text)
        except InvalidOperation:
            return f"{name} {text!r} is not a number"
        if not value.is_finite() or value < 0:
            return f"{name} {text!r} must be a finite number, 0 or more"
        values.append(value)
    return values
