"""What every part of the SQLite store shares: the schema, the one shared connection, and how
statements run on it (a `BEGIN IMMEDIATE` transaction per write, `sqlite3.Error` -> `StoreError`).

Lease and expiry times are this machine's wall clock (`clock_us`) in microseconds since the epoch.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import StoreError

BUSY_TIMEOUT_SECONDS = 10.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, conversation_key TEXT NOT NULL, created_us INTEGER NOT NULL,
    version INTEGER NOT NULL, data TEXT NOT NULL, teams_tenant_id TEXT);
CREATE INDEX IF NOT EXISTS connections_by_conversation ON connections (conversation_key, created_us);
CREATE TABLE IF NOT EXISTS tokens (
    connection_id TEXT NOT NULL, kind TEXT NOT NULL, blob BLOB NOT NULL, PRIMARY KEY (connection_id, kind));
CREATE TABLE IF NOT EXISTS oauth_states (state TEXT PRIMARY KEY, payload TEXT NOT NULL, expires_us INTEGER NOT NULL);
-- The expiry sweeps (put_state, incr_counter) read by expiry: without an index, a full scan each time.
CREATE INDEX IF NOT EXISTS oauth_states_by_expiry ON oauth_states (expires_us);
CREATE TABLE IF NOT EXISTS conversation_refs (key TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, connection_id TEXT NOT NULL, started_us INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_connection ON runs (connection_id, started_us);
CREATE TABLE IF NOT EXISTS fingerprints (
    connection_id TEXT NOT NULL, entity TEXT NOT NULL, data TEXT NOT NULL, PRIMARY KEY (connection_id, entity));
CREATE TABLE IF NOT EXISTS schedule (
    connection_id TEXT PRIMARY KEY, due_us INTEGER, on_demand INTEGER NOT NULL, owner TEXT,
    lease_until_us INTEGER, pending_us INTEGER, pending_on_demand INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS schedule_by_due ON schedule (due_us);
CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS documents (key TEXT PRIMARY KEY, data TEXT NOT NULL, etag TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL, expires_us INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS counters_by_expiry ON counters (expires_us);
-- The run-event feed: AUTOINCREMENT so a sequence number (the cursor) is never reused after trimming.
CREATE TABLE IF NOT EXISTS run_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, connection_id TEXT NOT NULL, run_id TEXT NOT NULL,
    kind TEXT NOT NULL, at_us INTEGER NOT NULL);
"""
# Every table and how dump_all names its rows.
TABLES = {
    "connections": "id",
    "tokens": "connection_id || '/' || kind",
    "oauth_states": "state",
    "conversation_refs": "key",
    "runs": "id",
    "fingerprints": "connection_id || '/' || entity",
    "schedule": "connection_id",
    "locks": "name",
    "documents": "key",
    "counters": "name",
    "run_events": "seq",
}


def clock_us() -> int:
    return time.time_ns() // 1000


def ttl_us(seconds: float) -> int:
    return max(1, int(seconds * 1_000_000))


async def connect(path: Path) -> aiosqlite.Connection:
    """Open the file at `path` (creating it, its folder and the schema if needed) in WAL mode."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        await db.execute("BEGIN IMMEDIATE")
        for statement in filter(str.strip, SCHEMA.split(";")):
            await db.execute(statement)
        await _index_tenants(db)
        await db.execute("COMMIT")
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(f"cannot open the SQLite store at {path}: {exc}") from exc
    return db


async def _index_tenants(db: aiosqlite.Connection) -> None:
    """The `teams_tenant_id` column and its index, on a file made before they existed too: the column
    is added and filled from each record's JSON (idempotent; rows left NULL by a process of an older
    version are filled at the next open, and `list_tenant_connections` reads them meanwhile)."""
    cursor = await db.execute("PRAGMA table_info(connections)")
    if "teams_tenant_id" not in {row["name"] for row in await cursor.fetchall()}:
        await db.execute("ALTER TABLE connections ADD COLUMN teams_tenant_id TEXT")
    await db.execute(
        "UPDATE connections SET teams_tenant_id = json_extract(data, '$.teams_tenant_id') "
        "WHERE teams_tenant_id IS NULL"
    )
    await db.execute(
        "CREATE INDEX IF NOT EXISTS connections_by_tenant ON connections (teams_tenant_id, created_us, id)"
    )


class SqliteBase:
    """The connection the store's parts share, and an asyncio.Lock so coroutines of one object do not
    interleave their statements on it."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction, holding SQLite's write lock from the first statement."""
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                await self._db.execute("COMMIT")
            except BaseException as exc:
                # Statements run in order on aiosqlite's thread even when the awaiting coroutine was
                # cancelled, so this ROLLBACK always follows the BEGIN (or COMMIT) that went before it
                # and never leaves the shared connection inside a transaction. "No transaction" is fine.
                with contextlib.suppress(sqlite3.Error):
                    await self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite store failed: {exc}") from exc
                raise

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        async with self._lock:
            try:
                cursor = await self._db.execute(sql, tuple(params))
                return list(await cursor.fetchall())
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store failed: {exc}") from exc

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Row | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None
