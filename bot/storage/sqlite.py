"""The embedded store: one SQLite file (`<data_dir>/connector.db`) in WAL mode, through aiosqlite.

Every write is a `BEGIN IMMEDIATE` transaction, so two processes (or two store objects) on the same
file serialise their read-modify-write steps on SQLite's own lock: a due run is claimed once, a lock
held once. Within one object an asyncio.Lock keeps coroutines from interleaving on the shared
connection. Values are JSON text (pydantic's own serialisation), token sets are opaque BLOBs.

Lease and expiry times are this machine's wall clock in microseconds since the epoch; due times
are whatever the caller passes (the scheduler's clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import (
    Claim,
    Connection,
    ConversationRef,
    Document,
    RunRecord,
    TokenKind,
    utcnow,
)

log = logging.getLogger(__name__)

RUNS_KEPT = 200
BUSY_TIMEOUT_SECONDS = 10.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY, conversation_key TEXT NOT NULL, created_us INTEGER NOT NULL,
    version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS connections_by_conversation ON connections (conversation_key, created_us);
CREATE TABLE IF NOT EXISTS tokens (
    connection_id TEXT NOT NULL, kind TEXT NOT NULL, blob BLOB NOT NULL, PRIMARY KEY (connection_id, kind));
CREATE TABLE IF NOT EXISTS oauth_states (state TEXT PRIMARY KEY, payload TEXT NOT NULL, expires_us INTEGER NOT NULL);
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
"""
# Every table and how dump_all names its rows.
_TABLES = {
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
}


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch, exact (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _clock_us() -> int:
    return time.time_ns() // 1000


def _ttl_us(seconds: float) -> int:
    return max(1, int(seconds * 1_000_000))


Due = tuple[int, bool]  # (due time in us, on demand)


def merge_due(current: Due | None, new: Due) -> Due:
    """What `schedule` does to an existing entry: move it, unless either side is an on-demand
    request, which is kept, at the earlier of the two times."""
    if current is None:
        return new
    if current[1] or new[1]:
        return min(current[0], new[0]), True
    return new


def earliest_due(a: Due | None, b: Due | None) -> Due | None:
    """Two requests folded into one entry: the earlier time, on demand if either was."""
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), a[1] or b[1]


@dataclass(frozen=True)
class _Entry:
    due: Due | None = None  # while leased: the due time that was claimed
    owner: str | None = None
    lease_until: int | None = None
    pending: Due | None = None  # scheduled while leased: applies once the lease ends

    def leased(self, now: int) -> bool:
        return self.owner is not None and (self.lease_until or 0) > now

    def settled(self, now: int) -> _Entry:
        """With an expired lease dropped: the claimed run is due again, with what was scheduled meanwhile."""
        if self.owner is None or self.leased(now):
            return self
        return _Entry(due=earliest_due(self.due, self.pending))


def _entry(row: sqlite3.Row | None) -> _Entry | None:
    if row is None:
        return None
    due = None if row["due_us"] is None else (int(row["due_us"]), bool(row["on_demand"]))
    pending = None if row["pending_us"] is None else (int(row["pending_us"]), bool(row["pending_on_demand"]))
    return _Entry(due, row["owner"], row["lease_until_us"], pending)


class SqliteStore:
    """Every store protocol of `bot.storage.base` on one SQLite file."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        """Open (creating the file and schema if needed) the store at `path`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_SECONDS)
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            await db.execute("BEGIN IMMEDIATE")
            for statement in filter(str.strip, _SCHEMA.split(";")):
                await db.execute(statement)
            await db.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open the SQLite store at {path}: {exc}") from exc
        log.info("SQLite store open at %s", path)
        return cls(db, path)

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

    # Connections.
    async def create_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": 1})
        async with self._tx() as db:
            try:
                await db.execute(
                    "INSERT INTO connections (id, conversation_key, created_us, version, data) VALUES (?,?,?,?,?)",
                    (
                        stored.id,
                        stored.conversation_key,
                        to_us(stored.created_at),
                        1,
                        stored.model_dump_json(),
                    ),
                )
            except sqlite3.IntegrityError:
                raise ConcurrencyError(f"connection {connection.id} already exists") from None
        return stored

    async def get_connection(self, connection_id: str) -> Connection | None:
        row = await self._one("SELECT data FROM connections WHERE id = ?", (connection_id,))
        return None if row is None else Connection.model_validate_json(row["data"])

    async def save_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": connection.version + 1})
        async with self._tx() as db:
            cursor = await db.execute(
                "UPDATE connections SET conversation_key = ?, version = ?, data = ? WHERE id = ? AND version = ?",
                (
                    stored.conversation_key,
                    stored.version,
                    stored.model_dump_json(),
                    stored.id,
                    connection.version,
                ),
            )
            if cursor.rowcount != 1:
                raise ConcurrencyError(
                    f"connection {connection.id} changed or was deleted since version {connection.version}"
                )
        return stored

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        if conversation_key is None:
            rows = await self._all("SELECT data FROM connections ORDER BY created_us, id")
        else:
            rows = await self._all(
                "SELECT data FROM connections WHERE conversation_key = ? ORDER BY created_us, id",
                (conversation_key,),
            )
        return [Connection.model_validate_json(row["data"]) for row in rows]

    async def delete_connection(self, connection_id: str) -> None:
        """Delete the connection and everything kept for it (tokens, runs, fingerprints, schedule)."""
        async with self._tx() as db:
            await db.execute("DELETE FROM connections WHERE id = ?", (connection_id,))
            for table in ("tokens", "runs", "fingerprints", "schedule"):
                await db.execute(f"DELETE FROM {table} WHERE connection_id = ?", (connection_id,))  # noqa: S608

    # Tokens.
    async def put_tokens(self, connection_id: str, kind: TokenKind, blob: bytes) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT OR REPLACE INTO tokens (connection_id, kind, blob) VALUES (?,?,?)",
                (connection_id, kind.value, bytes(blob)),
            )

    async def get_tokens(self, connection_id: str, kind: TokenKind) -> bytes | None:
        row = await self._one(
            "SELECT blob FROM tokens WHERE connection_id = ? AND kind = ?", (connection_id, kind.value)
        )
        return None if row is None else bytes(row["blob"])

    async def delete_tokens(self, connection_id: str, kind: TokenKind | None = None) -> None:
        async with self._tx() as db:
            if kind is None:
                await db.execute("DELETE FROM tokens WHERE connection_id = ?", (connection_id,))
            else:
                await db.execute(
                    "DELETE FROM tokens WHERE connection_id = ? AND kind = ?", (connection_id, kind.value)
                )

    async def all_token_blobs(self) -> list[tuple[str, TokenKind, bytes]]:
        rows = await self._all("SELECT connection_id, kind, blob FROM tokens ORDER BY connection_id, kind")
        return [(row["connection_id"], TokenKind(row["kind"]), bytes(row["blob"])) for row in rows]

    # OAuth state.
    async def put_state(self, state: str, payload: dict[str, Any], ttl_seconds: float) -> None:
        now = _clock_us()
        async with self._tx() as db:
            await db.execute("DELETE FROM oauth_states WHERE expires_us <= ?", (now,))
            await db.execute(
                "INSERT OR REPLACE INTO oauth_states (state, payload, expires_us) VALUES (?,?,?)",
                (state, json.dumps(payload), now + _ttl_us(ttl_seconds)),
            )

    async def take_state(self, state: str) -> dict[str, Any] | None:
        async with self._tx() as db:
            cursor = await db.execute(
                "DELETE FROM oauth_states WHERE state = ? RETURNING payload, expires_us", (state,)
            )
            row = await cursor.fetchone()
        if row is None or row["expires_us"] <= _clock_us():
            return None
        payload: dict[str, Any] = json.loads(row["payload"])
        return payload

    async def peek_state(self, state: str) -> dict[str, Any] | None:
        row = await self._one(
            "SELECT payload FROM oauth_states WHERE state = ? AND expires_us > ?", (state, _clock_us())
        )
        return None if row is None else dict(json.loads(row["payload"]))

    # Conversation references.
    async def save_reference(self, ref: ConversationRef) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT OR REPLACE INTO conversation_refs (key, data) VALUES (?,?)",
                (ref.key, ref.model_dump_json()),
            )

    async def get_reference(self, key: str) -> ConversationRef | None:
        row = await self._one("SELECT data FROM conversation_refs WHERE key = ?", (key,))
        return None if row is None else ConversationRef.model_validate_json(row["data"])

    async def mark_removed(self, key: str) -> None:
        async with self._tx() as db:
            cursor = await db.execute("SELECT data FROM conversation_refs WHERE key = ?", (key,))
            row = await cursor.fetchone()
            if row is None:
                return
            ref = ConversationRef.model_validate_json(row["data"])
            ref = ref.model_copy(update={"removed": True, "updated_at": utcnow()})
            await db.execute(
                "UPDATE conversation_refs SET data = ? WHERE key = ?", (ref.model_dump_json(), key)
            )

    # Runs.
    async def save_run(self, run: RunRecord) -> None:
        async with self._tx() as db:
            await db.execute(
                "INSERT OR REPLACE INTO runs (id, connection_id, started_us, data) VALUES (?,?,?,?)",
                (run.id, run.connection_id, to_us(run.started_at), run.model_dump_json()),
            )
            await db.execute(
                "DELETE FROM runs WHERE connection_id = ? AND id NOT IN (SELECT id FROM runs "
                "WHERE connection_id = ? ORDER BY started_us DESC, id DESC LIMIT ?)",
                (run.connection_id, run.connection_id, RUNS_KEPT),
            )

    async def list_runs(self, connection_id: str, limit: int = 10) -> list[RunRecord]:
        if limit <= 0:
            return []
        rows = await self._all(
            "SELECT data FROM runs WHERE connection_id = ? ORDER BY started_us DESC, id DESC LIMIT ?",
            (connection_id, limit),
        )
        return [RunRecord.model_validate_json(row["data"]) for row in rows]

    async def get_run(self, run_id: str) -> RunRecord | None:
        row = await self._one("SELECT data FROM runs WHERE id = ?", (run_id,))
        return None if row is None else RunRecord.model_validate_json(row["data"])

    # Fingerprints.
    async def get_fingerprints(self, connection_id: str, entity: str) -> dict[str, str]:
        row = await self._one(
            "SELECT data FROM fingerprints WHERE connection_id = ? AND entity = ?", (connection_id, entity)
        )
        return {} if row is None else {str(k): str(v) for k, v in json.loads(row["data"]).items()}

    async def put_fingerprints(self, connection_id: str, entity: str, fingerprints: dict[str, str]) -> None:
        async with self._tx() as db:
            await db.execute(
                "DELETE FROM fingerprints WHERE connection_id = ? AND entity = ?", (connection_id, entity)
            )
            if fingerprints:
                await db.execute(
                    "INSERT INTO fingerprints (connection_id, entity, data) VALUES (?,?,?)",
                    (connection_id, entity, json.dumps(fingerprints, sort_keys=True)),
                )

    async def delete_fingerprints(self, connection_id: str) -> None:
        async with self._tx() as db:
            await db.execute("DELETE FROM fingerprints WHERE connection_id = ?", (connection_id,))

    # Schedule.
    @staticmethod
    async def _read_entry(db: aiosqlite.Connection, connection_id: str) -> _Entry | None:
        cursor = await db.execute("SELECT * FROM schedule WHERE connection_id = ?", (connection_id,))
        return _entry(await cursor.fetchone())

    @staticmethod
    async def _write_entry(db: aiosqlite.Connection, connection_id: str, entry: _Entry | None) -> None:
        if entry is None or (entry.due is None and entry.owner is None and entry.pending is None):
            await db.execute("DELETE FROM schedule WHERE connection_id = ?", (connection_id,))
            return
        due, pending = entry.due, entry.pending
        await db.execute(
            "INSERT OR REPLACE INTO schedule (connection_id, due_us, on_demand, owner, lease_until_us, "
            "pending_us, pending_on_demand) VALUES (?,?,?,?,?,?,?)",
            (
                connection_id,
                due and due[0],
                bool(due and due[1]),
                entry.owner,
                entry.lease_until,
                pending and pending[0],
                bool(pending and pending[1]),
            ),
        )

    async def schedule(self, connection_id: str, due_at: datetime, *, on_demand: bool = False) -> None:
        new = (to_us(due_at), on_demand)
        async with self._tx() as db:
            now = _clock_us()
            entry = (await self._read_entry(db, connection_id) or _Entry()).settled(now)
            if entry.leased(now):
                entry = replace(entry, pending=merge_due(entry.pending, new))
            else:
                entry = replace(entry, due=merge_due(entry.due, new))
            await self._write_entry(db, connection_id, entry)

    async def unschedule(self, connection_id: str) -> None:
        """Forget the due time. A run in progress keeps its lease (so nothing else starts it);
        if that lease expires, the run is not due again."""
        async with self._tx() as db:
            now = _clock_us()
            entry = await self._read_entry(db, connection_id)
            if entry is not None and entry.leased(now):
                await self._write_entry(db, connection_id, replace(entry, due=None, pending=None))
            else:
                await self._write_entry(db, connection_id, None)

    async def claim_due(self, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
        if limit <= 0:
            return []
        claims: list[Claim] = []
        async with self._tx() as db:
            clock = _clock_us()
            cursor = await db.execute(
                "SELECT * FROM schedule WHERE owner IS NOT NULL AND lease_until_us <= ?", (clock,)
            )
            for row in await cursor.fetchall():
                expired = _entry(row)
                assert expired is not None
                await self._write_entry(db, row["connection_id"], expired.settled(clock))
            cursor = await db.execute(
                "SELECT connection_id, due_us, on_demand FROM schedule WHERE owner IS NULL AND due_us <= ? "
                "ORDER BY on_demand DESC, due_us, connection_id LIMIT ?",
                (to_us(now), limit),
            )
            until = clock + _ttl_us(lease_seconds)
            for row in await cursor.fetchall():
                await db.execute(
                    "UPDATE schedule SET owner = ?, lease_until_us = ? WHERE connection_id = ?",
                    (owner, until, row["connection_id"]),
                )
                claims.append(
                    Claim(
                        row["connection_id"],
                        from_us(row["due_us"]),
                        owner,
                        from_us(until),
                        bool(row["on_demand"]),
                    )
                )
        return claims

    async def extend_lease(self, connection_id: str, owner: str, lease_seconds: float) -> bool:
        async with self._tx() as db:
            now = _clock_us()
            cursor = await db.execute(
                "UPDATE schedule SET lease_until_us = ? WHERE connection_id = ? AND owner = ? AND lease_until_us > ?",
                (now + _ttl_us(lease_seconds), connection_id, owner, now),
            )
            return cursor.rowcount == 1

    async def release(self, connection_id: str, owner: str, next_due: datetime | None) -> bool:
        """End our lease. The next due time is `next_due` or anything scheduled during the run,
        whichever is earlier (a request made during the run is never lost)."""
        async with self._tx() as db:
            now = _clock_us()
            entry = await self._read_entry(db, connection_id)
            if entry is None or not entry.leased(now) or entry.owner != owner:
                return False
            following = None if next_due is None else (to_us(next_due), False)
            await self._write_entry(db, connection_id, _Entry(due=earliest_due(entry.pending, following)))
            return True

    async def get_due(self, connection_id: str) -> datetime | None:
        """The next due time: while a run is leased, the one scheduled for after it (if any)."""
        now = _clock_us()
        entry = _entry(await self._one("SELECT * FROM schedule WHERE connection_id = ?", (connection_id,)))
        if entry is None:
            return None
        entry = entry.settled(now)
        due = entry.pending if entry.leased(now) else entry.due
        return None if due is None else from_us(due[0])

    async def lease_holder(self, connection_id: str) -> str | None:
        row = await self._one(
            "SELECT owner FROM schedule WHERE connection_id = ? AND lease_until_us > ?",
            (connection_id, _clock_us()),
        )
        return None if row is None else str(row["owner"])

    # Locks.
    async def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lock, or refresh it if `owner` already holds it."""
        async with self._tx() as db:
            now = _clock_us()
            cursor = await db.execute(
                "SELECT owner FROM locks WHERE name = ? AND expires_us > ?", (name, now)
            )
            row = await cursor.fetchone()
            if row is not None and row["owner"] != owner:
                return False
            await db.execute(
                "INSERT OR REPLACE INTO locks (name, owner, expires_us) VALUES (?,?,?)",
                (name, owner, now + _ttl_us(ttl_seconds)),
            )
            return True

    async def release_lock(self, name: str, owner: str) -> None:
        async with self._tx() as db:
            await db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))

    # Documents.
    async def read_documents(self, keys: list[str]) -> dict[str, Document]:
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        rows = await self._all(f"SELECT key, data, etag FROM documents WHERE key IN ({marks})", keys)  # noqa: S608
        return {row["key"]: Document(json.loads(row["data"]), row["etag"]) for row in rows}

    async def write_document(self, key: str, value: dict[str, Any], expected_etag: str | None) -> str:
        """A missing document has no eTag: writing it with an expected eTag other than "*" conflicts."""
        etag = uuid.uuid4().hex
        data = json.dumps(value)
        async with self._tx() as db:
            if expected_etag not in (None, "*"):
                cursor = await db.execute("SELECT etag FROM documents WHERE key = ?", (key,))
                row = await cursor.fetchone()
                if row is None or row["etag"] != expected_etag:
                    raise ConcurrencyError(f"document {key!r} changed since it was read")
            await db.execute(
                "INSERT OR REPLACE INTO documents (key, data, etag) VALUES (?,?,?)", (key, data, etag)
            )
        return etag

    async def delete_documents(self, keys: list[str]) -> None:
        if not keys:
            return
        marks = ",".join("?" * len(keys))
        async with self._tx() as db:
            await db.execute(f"DELETE FROM documents WHERE key IN ({marks})", keys)  # noqa: S608

    # Counters.
    async def incr_counter(self, name: str, ttl_seconds: float) -> int:
        async with self._tx() as db:
            now = _clock_us()
            cursor = await db.execute(
                "UPDATE counters SET value = value + 1 WHERE name = ? AND expires_us > ? RETURNING value",
                (name, now),
            )
            row = await cursor.fetchone()
            if row is not None:
                return int(row["value"])
            await db.execute(
                "INSERT OR REPLACE INTO counters (name, value, expires_us) VALUES (?, 1, ?)",
                (name, now + _ttl_us(ttl_seconds)),
            )
            return 1

    # The store itself.
    async def ping(self) -> bool:
        try:
            return await self._one("SELECT 1 AS ok") is not None
        except StoreError:
            return False

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def dump_all(self) -> list[tuple[str, bytes]]:
        dumped: list[tuple[str, bytes]] = []
        for table, name in _TABLES.items():
            for row in await self._all(f"SELECT {name} AS _name, * FROM {table}"):  # noqa: S608
                values = {k: row[k] for k in row.keys() if k != "_name"}  # noqa: SIM118
                raw = values.get("blob") if table == "tokens" else values.get("data", values.get("payload"))
                if raw is None:
                    raw = json.dumps(values)
                dumped.append(
                    (f"{table}/{row['_name']}", raw if isinstance(raw, bytes) else str(raw).encode())
                )
        return dumped
