"""Times as text: one ISO 8601 form for the report, the trade files and the webhook."""

import pytest

from paper_trader.clock import iso_ms


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_700_000_040_000, "2023-11-14T22:14:00Z"),
        (1_700_000_040_007, "2023-11-14T22:14:00.007Z"),
        (1_700_000_040_999, "2023-11-14T22:14:00.999Z"),
    ],
)
def test_whole_seconds_have_no_fraction_and_milliseconds_are_kept(ms: int, text: str) -> None:
    assert iso_ms(ms) == text
