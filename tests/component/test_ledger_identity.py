"""A ledger keeps one INITIAL_BALANCE, EXCHANGE and INTERVAL: recorded, compared, refused."""

import json
from decimal import Decimal

import aiosqlite
import pytest

from paper_trader.app.ledger import LedgerIdentity, check_identity
from paper_trader.domain import Candle, Interval, Venue
from paper_trader.errors import ConfigError
from paper_trader.storage import UpsertCandles, apply_transaction, metadata_values
from paper_trader.storage.ledger_ops import LedgerState, RecordInstant

HINT = "set DB_PATH to another file (or move paper_trader.db away)"
BINANCE_1M = LedgerIdentity(
    initial_balance=Decimal(10_000), exchange=Venue.BINANCE, interval=Interval.M1
)


async def test_the_first_start_records_the_identity_and_the_same_one_passes(
    conn: aiosqlite.Connection,
) -> None:
    """Recorded in metadata; 10000.00 is the same balance as 10000."""
    await check_identity(conn, BINANCE_1M, fresh_ledger=HINT)
    same = LedgerIdentity(
        initial_balance=Decimal("10000.00"), exchange=Venue.BINANCE, interval=Interval.M1
    )
    await check_identity(conn, same, fresh_ledger=HINT)
    recorded = await metadata_values(conn)
    assert {k: v for k, v in recorded.items() if k.startswith("ledger_")} == {
        "ledger_initial_balance": "10000",
        "ledger_exchange": "binance",
        "ledger_interval": "1m",
    }


@pytest.mark.parametrize(
    ("changed", "was", "now"),
    [
        ({"interval": Interval.M5}, "INTERVAL=1m", "INTERVAL=5m"),
        ({"exchange": Venue.KRAKEN}, "EXCHANGE=binance", "EXCHANGE=kraken"),
        ({"initial_balance": Decimal(5_000)}, "INITIAL_BALANCE=10000", "INITIAL_BALANCE=5000"),
    ],
)
async def test_another_balance_venue_or_interval_is_refused_naming_both(
    conn: aiosqlite.Connection, changed: dict[str, object], was: str, now: str
) -> None:
    """The error names the ledger's value, the settings' value and how to start afresh."""
    await check_identity(conn, BINANCE_1M, fresh_ledger=HINT)
    other = LedgerIdentity(**{**_fields(BINANCE_1M), **changed})  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as refused:
        await check_identity(conn, other, fresh_ledger=HINT)
    message = str(refused.value)
    assert f"this ledger was started with {was}, but the settings say {now}" in message
    assert message.endswith(HINT)


async def test_a_database_from_before_the_identity_was_recorded_is_judged_by_its_contents(
    conn: aiosqlite.Connection,
) -> None:
    """No metadata yet: the trading state's balance and the candles' venue and interval."""
    state = {"breakers": {}, "handled": {"BTC-USDT": 0}, "initial_balance": "10000"}
    await apply_transaction(
        conn,
        [
            UpsertCandles(candles=(_candle(),)),
            RecordInstant(
                state=LedgerState(
                    cash="10000", next_fill_id=1, last_candle_ms=0, state_json=json.dumps(state)
                )
            ),
        ],
    )
    other = LedgerIdentity(
        initial_balance=Decimal(20_000), exchange=Venue.BINANCE, interval=Interval.M15
    )
    with pytest.raises(ConfigError) as refused:
        await check_identity(conn, other, fresh_ledger=HINT)
    assert "started with INITIAL_BALANCE=10000, INTERVAL=1m" in str(refused.value)
    assert "the settings say INITIAL_BALANCE=20000, INTERVAL=15m" in str(refused.value)
    await check_identity(conn, BINANCE_1M, fresh_ledger=HINT)
    assert (await metadata_values(conn))["ledger_interval"] == "1m"


def _fields(identity: LedgerIdentity) -> dict[str, object]:
    return {
        "initial_balance": identity.initial_balance,
        "exchange": identity.exchange,
        "interval": identity.interval,
    }


def _candle() -> Candle:
    one = Decimal(1)
    return Candle(
        venue=Venue.BINANCE,
        symbol="BTC-USDT",
        interval=Interval.M1,
        open_time_ms=0,
        open=one,
        high=one,
        low=one,
        close=one,
        volume=one,
    )
