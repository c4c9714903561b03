"""The parts of the SQLite store that several processes contend for: the run schedule with its
leases, named locks, documents written at an eTag, and expiring counters.

Each step is one `BEGIN IMMEDIATE` transaction, so two processes on the same file serialise on
SQLite's write lock: a due run is claimed once, a lock held once. The schedule follows the rules of
`bot.storage.common`; lease times are this machine's wall clock, due times the caller's.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiosqlite

from bot.errors import ConcurrencyError
from bot.storage.base import Claim, Document, RunEvent, RunEventKind
from bot.storage.common import RUN_EVENTS_KEPT, ScheduleEntry, earliest_due, from_us, merge_due, to_us
from bot.storage.sqlite_base import SqliteBase, clock_us, ttl_us


def _entry(row: sqlite3.Row | None) -> ScheduleEntry | None:
    if row is None:
        return None
    due = None if row["due_us"] is None else (int(row["due_us"]), bool(row["on_demand"]))
    pending = None if row["pending_us"] is None else (int(row["pending_us"]), bool(row["pending_on_demand"]))
    return ScheduleEntry(due, row["owner"], row["lease_until_us"], pending)


class SqliteCoordination(SqliteBase):
    """Schedule, locks, documents, counters and run events of `SqliteStore`."""

    run_events_kept = RUN_EVENTS_KEPT

    # Schedule.
    @staticmethod
    async def _read_entry(db: aiosqlite.Connection, connection_id: str) -> ScheduleEntry | None:
        cursor = await db.execute("SELECT * FROM schedule WHERE connection_id = ?", (connection_id,))
        return _entry(await cursor.fetchone())

    @staticmethod
    async def _write_entry(db: aiosqlite.Connection, connection_id: str, entry: ScheduleEntry | None) -> None:
        if entry is None or entry.empty():
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
            now = clock_us()
            entry = (await self._read_entry(db, connection_id) or ScheduleEntry()).settled(now)
            if entry.leased(now):
                entry = replace(entry, pending=merge_due(entry.pending, new))
            else:
                entry = replace(entry, due=merge_due(entry.due, new))
            await self._write_entry(db, connection_id, entry)

    async def unschedule(self, connection_id: str) -> None:
        """Forget the due time. A run in progress keeps its lease (so nothing else starts it);
        if that lease expires, the run is not due again."""
        async with self._tx() as db:
            now = clock_us()
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
            clock = clock_us()
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
            until = clock + ttl_us(lease_seconds)
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
            now = clock_us()
            cursor = await db.execute(
                "UPDATE schedule SET lease_until_us = ? WHERE connection_id = ? AND owner = ? AND lease_until_us > ?",
                (now + ttl_us(lease_seconds), connection_id, owner, now),
            )
            return cursor.rowcount == 1

    async def release(self, connection_id: str, owner: str, next_due: datetime | None) -> bool:
        """End our lease. The next due time is `next_due` or anything scheduled during the run,
        whichever is earlier (a request made during the run is never lost)."""
        async with self._tx() as db:
            now = clock_us()
            entry = await self._read_entry(db, connection_id)
            if entry is None or not entry.leased(now) or entry.owner != owner:
                return False
            following = None if next_due is None else (to_us(next_due), False)
            await self._write_entry(
                db, connection_id, ScheduleEntry(due=earliest_due(entry.pending, following))
            )
            return True

    async def get_due(self, connection_id: str) -> datetime | None:
        """The next due time: while a run is leased, the one scheduled for after it (if any)."""
        now = clock_us()
        entry = _entry(await self._one("SELECT * FROM schedule WHERE connection_id = ?", (connection_id,)))
        if entry is None:
            return None
        entry = entry.settled(now)
        due = entry.pending if entry.leased(now) else entry.due
        return None if due is None else from_us(due[0])

    async def lease_holder(self, connection_id: str) -> str | None:
        row = await self._one(
            "SELECT owner FROM schedule WHERE connection_id = ? AND lease_until_us > ?",
            (connection_id, clock_us()),
        )
        return None if row is None else str(row["owner"])

    # Locks.
    async def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lock, or refresh it if `owner` already holds it."""
        async with self._tx() as db:
            now = clock_us()
            cursor = await db.execute(
                "SELECT owner FROM locks WHERE name = ? AND expires_us > ?", (name, now)
            )
            row = await cursor.fetchone()
            if row is not None and row["owner"] != owner:
                return False
            await db.execute(
                "INSERT OR REPLACE INTO locks (name, owner, expires_us) VALUES (?,?,?)",
                (name, owner, now + ttl_us(ttl_seconds)),
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
            now = clock_us()
            cursor = await db.execute(
                "UPDATE counters SET value = value + 1 WHERE name = ? AND expires_us > ? RETURNING value",
                (name, now),
            )
            row = await cursor.fetchone()
            if row is not None:
                return int(row["value"])
            # A new window: expired counters go first (by index), so the table holds live ones only.
            await db.execute("DELETE FROM counters WHERE expires_us <= ?", (now,))
            await db.execute(
                "INSERT OR REPLACE INTO counters (name, value, expires_us) VALUES (?, 1, ?)",
                (name, now + ttl_us(ttl_seconds)),
            )
            return 1

    # The run-event feed: cursors are the rows' sequence numbers, as text.
    async def append_run_event(self, connection_id: str, run_id: str, kind: RunEventKind) -> str:
        async with self._tx() as db:
            cursor = await db.execute(
                "INSERT INTO run_events (connection_id, run_id, kind, at_us) VALUES (?,?,?,?) RETURNING seq",
                (connection_id, run_id, RunEventKind(kind).value, clock_us()),
            )
            row = await cursor.fetchone()
            assert row is not None
            seq = int(row["seq"])
            # Capped like the Redis stream: by primary key, so the trim is a short range delete.
            await db.execute("DELETE FROM run_events WHERE seq <= ?", (seq - self.run_events_kept,))
        return str(seq)

    async def read_run_events(self, after: str = "", limit: int = 100) -> tuple[list[RunEvent], str]:
        if limit <= 0:
            return [], after
        rows = await self._all(
            "SELECT * FROM run_events WHERE seq > ? ORDER BY seq LIMIT ?", (int(after or 0), limit)
        )
        events = [
            RunEvent(
                str(row["seq"]),
                row["connection_id"],
                row["run_id"],
                RunEventKind(row["kind"]),
                from_us(row["at_us"]),
            )
            for row in rows
        ]
        return events, events[-1].cursor if events else after

    async def run_events_tail(self) -> str:
        row = await self._one("SELECT MAX(seq) AS seq FROM run_events")
        return "" if row is None or row["seq"] is None else str(row["seq"])
