"""SQLite persistence: opening and locking, migrations, the single writer, queries, backups."""

from paper_trader.storage.backup import BackupResult, backup_database
from paper_trader.storage.database import DatabaseLock, open_database, open_reader
from paper_trader.storage.migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    Migration,
    MigrationResult,
    migrate,
)
from paper_trader.storage.ops import (
    AppendOutbox,
    RecordGap,
    RecordRunStop,
    RunStart,
    SetMetadata,
    UpsertCandles,
    start_run,
)
from paper_trader.storage.repository import (
    GapRecord,
    OutboxEntry,
    RunRecord,
    SeriesSummary,
    candles_to_resume,
    gap_records,
    last_open_time,
    load_candles,
    outbox_entries,
    runs,
    schema_version,
    series_summaries,
)
from paper_trader.storage.writer import (
    Durability,
    StorageWriter,
    WriteOp,
    WriterStats,
    apply_transaction,
)

__all__ = [
    "LATEST_VERSION",
    "MIGRATIONS",
    "AppendOutbox",
    "BackupResult",
    "DatabaseLock",
    "Durability",
    "GapRecord",
    "Migration",
    "MigrationResult",
    "OutboxEntry",
    "RecordGap",
    "RecordRunStop",
    "RunRecord",
    "RunStart",
    "SeriesSummary",
    "SetMetadata",
    "StorageWriter",
    "UpsertCandles",
    "WriteOp",
    "WriterStats",
    "apply_transaction",
    "backup_database",
    "candles_to_resume",
    "gap_records",
    "last_open_time",
    "load_candles",
    "migrate",
    "open_database",
    "open_reader",
    "outbox_entries",
    "runs",
    "schema_version",
    "series_summaries",
    "start_run",
]
