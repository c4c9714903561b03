"""The embedded store: one SQLite file (`<data_dir>/connector.db`) in WAL mode, through aiosqlite.

Every write is a `BEGIN IMMEDIATE` transaction, so two processes (or two store objects) on the same
file serialise their read-modify-write steps on SQLite's own lock: a due run is claimed once, a lock
held once. Within one object an asyncio.Lock keeps coroutines from interleaving on the shared
connection. Values are JSON text (pydantic's own serialisation), token sets are opaque BLOBs.

Lease and expiry times are this machine's wall clock in microseconds since the epoch; due times
are whatever the caller passes (the scheduler's clock).

The store is in three modules: this one (connections, tokens, OAuth state, conversation references,
runs, fingerprints, and opening the file), `sqlite_coordination` (schedule, locks, documents,
counters) and `sqlite_base` (schema, the shared connection, transactions). `to_us`, `from_us`,
`merge_due` and `earliest_due` live in `bot.storage.common` and are re-exported here.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import Connection, ConversationRef, RunRecord, TokenKind, utcnow
from bot.storage.common import RUNS_KEPT, earliest_due, from_us, merge_due, to_us
from bot.storage.sqlite_base import BUSY_TIMEOUT_SECONDS, TABLES, clock_us, connect, ttl_us
from bot.storage.sqlite_coordination import SqliteCoordination

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "RUNS_KEPT",
    "SqliteStore",
    "earliest_due",
    "from_us",
    "merge_due",
    "to_us",
]

log = logging.getLogger(__name__)


class SqliteStore(SqliteCoordination):
    """Every store protocol of `bot.storage.base` on one SQLite file.

    Connections, tokens, OAuth state, conversation references, runs and fingerprints are here; the
    schedule, locks, documents and counters come from `SqliteCoordination`."""

    @classmethod
    async def open(cls, path: Path) -> SqliteStore:
        """Open (creating the file and schema if needed) the store at `path`."""
        db = await connect(path)
        log.info("SQLite store open at %s", path)
        return cls(db, path)

    # Connections.
    async def create_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": 1})
        async with self._tx() as db:
            try:
                await db.execute(
                    "INSERT INTO connections (id, conversation_key, created_us, version, data, teams_tenant_id) "
                    "VALUES (?,?,?,?,?,?)",
                    (
                        stored.id,
                        stored.conversation_key,
                        to_us(stored.created_at),
                        1,
                        stored.model_dump_json(),
                        stored.teams_tenant_id,
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
                "UPDATE connections SET conversation_key = ?, version = ?, data = ?, teams_tenant_id = ? "
                "WHERE id = ? AND version = ?",
                (
                    stored.conversation_key,
                    stored.version,
                    stored.model_dump_json(),
                    stored.teams_tenant_id,
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

    async def list_tenant_connections(self, teams_tenant_id: str) -> list[Connection]:
        # NULL: a row written by a process of an older version since this file was opened.
        rows = await self._all(
            "SELECT data FROM connections WHERE teams_tenant_id = ? OR (teams_tenant_id IS NULL "
            "AND json_extract(data, '$.teams_tenant_id') = ?) ORDER BY created_us, id",
            (teams_tenant_id, teams_tenant_id),
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
        now = clock_us()
        async with self._tx() as db:
            await db.execute("DELETE FROM oauth_states WHERE expires_us <= ?", (now,))
            await db.execute(
                "INSERT OR REPLACE INTO oauth_states (state, payload, expires_us) VALUES (?,?,?)",
                (state, json.dumps(payload), now + ttl_us(ttl_seconds)),
            )

    async def take_state(self, state: str) -> dict[str, Any] | None:
        async with self._tx() as db:
            cursor = await db.execute(
                "DELETE FROM oauth_states WHERE state = ? RETURNING payload, expires_us", (state,)
            )
            row = await cursor.fetchone()
        if row is None or row["expires_us"] <= clock_us():
            return None
        payload: dict[str, Any] = json.loads(row["payload"])
        return payload

    async def peek_state(self, state: str) -> dict[str, Any] | None:
        row = await self._one(
            "SELECT payload FROM oauth_states WHERE state = ? AND expires_us > ?", (state, clock_us())
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
        for table, name in TABLES.items():
            for row in await self._all(f"SELECT {name} AS _name, * FROM {table}"):  # noqa: S608
                values = {k: row[k] for k in row.keys() if k != "_name"}  # noqa: SIM118
                raw = values.get("blob") if table == "tokens" else values.get("data", values.get("payload"))
                if raw is None:
                    raw = json.dumps(values)
                dumped.append(
                    (f"{table}/{row['_name']}", raw if isinstance(raw, bytes) else str(raw).encode())
                )
        return dumped
