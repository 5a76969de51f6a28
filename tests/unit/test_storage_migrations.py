"""Schema migrations: a fresh database, every earlier version, a newer one, and re-running."""

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from paper_trader.domain.trading import Side
from paper_trader.errors import ConfigError
from paper_trader.storage import LATEST_VERSION, MIGRATIONS, Migration, migrate, open_database
from paper_trader.storage.ledger_repository import open_positions
from paper_trader.storage.migrations import split_statements

TABLES = {
    "candles",
    "runs",
    "decisions",
    "fills",
    "trades",
    "positions",
    "equity_snapshots",
    "breaker_events",
    "trading_state",
    "notification_outbox",
    "notification_deliveries",
    "metadata",
    "deviations",
    "command_audit",
}

# Rows that can exist from a schema version on: (table, columns, values).
SAMPLE_ROWS: dict[int, tuple[tuple[str, tuple[str, ...], tuple[Any, ...]], ...]] = {
    1: (
        (
            "candles",
            (
                "venue",
                "symbol",
                "interval",
                "open_time_ms",
                "open",
                "high",
                "low",
                "close",
                "volume",
            ),
            ("binance", "BTCUSDT", "1m", 1_700_000_000_000, "1.5", "2", "1", "1.75", "0.001"),
        ),
        (
            "runs",
            ("started_at_ms", "mode", "pid", "app_version", "config_hash", "versions_json"),
            (1_700_000_000_000, "run", 4242, "0.1.0", "abc", "{}"),
        ),
        ("metadata", ("key", "value"), ("created_by", "test")),
    ),
    3: tuple(
        (
            "predictions",
            (
                "venue",
                "symbol",
                "interval",
                "open_time_ms",
                "model_version",
                "spec_hash",
                "close",
                "horizon",
                "threshold",
                "p_down",
                "p_flat",
                "p_up",
                "score",
                "strength",
                "confidence",
                "models_json",
                "weights_json",
                "outcome",
            ),
            (
                *("binance", symbol, "1m", at, "v1", "h", "1.75", 5, 0.002),
                *(0.2, 0.5, 0.3, 0.1, "weak", 0.4, "{}", "{}", outcome),
            ),
        )
        for symbol, at, outcome in (
            ("BTCUSDT", 1_700_000_060_000, "pending"),
            ("ETHUSDT", 1_700_000_000_000, "resolved"),
        )
    ),
    4: (
        (
            "decisions",
            (
                "venue",
                "symbol",
                "interval",
                "candle_time_ms",
                "strength",
                "score",
                "confidence",
                "model_version",
                "action",
                "side",
                "quantity",
                "price",
                "rule",
                "detail",
            ),
            (
                *("binance", "BTCUSDT", "1m", 1_700_000_000_000, "weak", 0.1, 0.4, "v1"),
                *("entered", "long", "0.5", "1.75", None, "entered long"),
            ),
        ),
    ),
}


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await open_database(tmp_path / "paper_trader.db")
    yield connection
    await connection.close()


async def schema(conn: aiosqlite.Connection) -> list[tuple[str, str, str]]:
    """Return the schema from sqlite_master with whitespace normalised."""
    rows = await conn.execute_fetchall(
        "SELECT type, name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name"
    )
    return [(kind, name, " ".join((sql or "").split())) for kind, name, sql in rows]


async def user_version(conn: aiosqlite.Connection) -> int:
    """Return PRAGMA user_version."""
    rows = list(await conn.execute_fetchall("PRAGMA user_version"))
    return int(rows[0][0])


def test_migrations_are_numbered_one_to_latest_without_gaps() -> None:
    """MIGRATIONS run 1..LATEST_VERSION in order."""
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST_VERSION + 1))


async def test_migrate_empty_database_reaches_latest_with_every_table(
    conn: aiosqlite.Connection,
) -> None:
    """A new file is migrated to LATEST_VERSION and holds every table."""
    result = await migrate(conn)

    assert (result.from_version, result.to_version) == (0, LATEST_VERSION)
    assert await user_version(conn) == LATEST_VERSION
    tables = {name for kind, name, _ in await schema(conn) if kind == "table"}
    assert tables >= TABLES


@pytest.mark.parametrize("start", range(0, LATEST_VERSION))
async def test_migrate_from_earlier_version_matches_fresh_schema_and_keeps_data(
    tmp_path: Path, conn: aiosqlite.Connection, start: int
) -> None:
    """A database built at an earlier version migrates to the fresh schema, rows intact."""
    await migrate(conn, target=start)
    assert await user_version(conn) == start
    samples = [row for version in range(1, start + 1) for row in SAMPLE_ROWS.get(version, ())]
    for table, columns, values in samples:
        marks = ", ".join("?" for _ in values)
        await conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", values)

    result = await migrate(conn)

    assert (result.from_version, result.to_version) == (start, LATEST_VERSION)
    fresh = await open_database(tmp_path / "fresh.db")
    try:
        await migrate(fresh)
        assert await schema(conn) == await schema(fresh)
    finally:
        await fresh.close()
    for table, columns, values in samples:
        rows = await conn.execute_fetchall(f"SELECT {', '.join(columns)} FROM {table}")
        assert values in [tuple(row) for row in rows]


async def test_migrate_refuses_database_newer_than_this_code(conn: aiosqlite.Connection) -> None:
    """A schema version above LATEST_VERSION is refused with a ConfigError naming it."""
    await conn.execute(f"PRAGMA user_version = {LATEST_VERSION + 1}")

    with pytest.raises(ConfigError, match=f"schema version {LATEST_VERSION + 1}") as caught:
        await migrate(conn)

    assert "paper_trader.db" in str(caught.value)
    assert await user_version(conn) == LATEST_VERSION + 1


async def test_migrate_twice_is_a_no_op(conn: aiosqlite.Connection) -> None:
    """Running migrate on an up-to-date database changes nothing."""
    await migrate(conn)
    before = await schema(conn)

    result = await migrate(conn)

    assert (result.from_version, result.to_version) == (LATEST_VERSION, LATEST_VERSION)
    assert await schema(conn) == before


async def test_failing_migration_leaves_previous_version_and_schema(
    conn: aiosqlite.Connection,
) -> None:
    """A migration that fails half-way is rolled back entirely, version included."""
    await migrate(conn)
    before = await schema(conn)
    broken = Migration(
        version=LATEST_VERSION + 1,
        description="broken on purpose",
        sql="CREATE TABLE extra (x INTEGER) STRICT; INSERT INTO missing VALUES (1);",
    )

    with pytest.raises(ConfigError, match="broken on purpose"):
        await migrate(conn, migrations=(*MIGRATIONS, broken))

    assert await user_version(conn) == LATEST_VERSION
    assert await schema(conn) == before
    assert not conn.in_transaction


async def test_positions_of_version_4_load_without_collateral_or_margin_call(
    conn: aiosqlite.Connection,
) -> None:
    """A short stored before the collateral model migrates to collateral 0, no margin call."""
    await migrate(conn, target=4)
    await conn.execute(
        "INSERT INTO fills (fill_id, venue, symbol, interval, side, quantity, price, fee, "
        "slippage_bps, candle_time_ms, reason, fill_model) VALUES "
        "(1, 'kraken', 'BTC-USD', '1m', 'sell', '25', '99.95', '2.49875', '5', 0, 'entry', "
        "'market_close')"
    )
    await conn.execute(
        "INSERT INTO positions (symbol, venue, interval, side, quantity, entry_price, "
        "entry_fee, entry_fill_id, opened_candle_ms, stop_price, take_profit_price, "
        "trailing_stop_price, extreme_price, risk_per_unit, atr) VALUES ('BTC-USD', 'kraken', "
        "'1m', 'short', '25', '99.95', '2.49875', 1, 0, '104', '92', NULL, '99.95', '4', '2')"
    )
    await conn.commit()

    await migrate(conn)
    [position] = await open_positions(conn)

    assert (position.side, position.quantity, position.stop_price) == (
        Side.SHORT,
        Decimal(25),
        Decimal(104),
    )
    assert (position.collateral, position.margin_call_price) == (Decimal(0), None)


def test_split_statements_respects_quotes_and_triggers() -> None:
    """Semicolons inside strings and trigger bodies do not split a statement."""
    sql = """
    CREATE TABLE a (x TEXT DEFAULT ';');
    CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 'y;'; DELETE FROM a; END;
    """

    statements = split_statements(sql)

    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER")
    assert statements[1].endswith("END;")
