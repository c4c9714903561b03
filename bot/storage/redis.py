"""The production store: Redis (standalone or Redis Cluster), shared by several bot and worker processes.

Every read-modify-write is one Lua script on keys of one hash slot, so it is atomic across
processes and runs on a cluster: a connection version, a due-run claim, a lock, a document eTag.
Lease times come from the Redis server's own clock (TIME), so processes on machines with skewed
clocks still agree on when a lease ends. What spans slots (the indexes of connections, run records)
is written around the script, in an order that keeps every index a superset of the truth: an index
entry is added before the record it points to and removed after it, and readers skip entries whose
record is missing or elsewhere (a conversation index is checked against the record). So a process
that dies between two steps leaves, at worst, an index entry to skip, never a record nobody can find.

The store is in six modules: this one (connections, tokens, OAuth state, conversation references,
runs, fingerprints, and opening the client), `redis_coordination` (locks, documents, counters, run
events), `redis_schedule` (the sharded due sets), `redis_base` (client, pool, error translation),
`redis_keys` (the layout: what shares a slot) and `redis_scripts` (the Lua). A deployment of the
first layout (before Redis Cluster support) is moved over once by `bot.storage.redis_migrate`.
`to_us` and `from_us` live in `bot.storage.common` and are re-exported here.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import Connection, ConversationRef, RunRecord, TokenKind, utcnow
from bot.storage.common import RUNS_KEPT, from_us, to_us
from bot.storage.redis_base import (
    REDIS_ERRORS,
    PoolSettings,
    as_bytes,
    as_text,
    glob_escape,
    make_client,
    where,
)
from bot.storage.redis_coordination import RedisCoordination
from bot.storage.redis_keys import DEFAULT_DUE_SHARDS

__all__ = ["RUNS_KEPT", "RedisStore", "from_us", "to_us"]

log = logging.getLogger(__name__)
OPTIMISTIC_ATTEMPTS = 20


class RedisStore(RedisCoordination):
    """Every store protocol of `bot.storage.base` on Redis, safe for several processes.

    Connections, tokens, OAuth state, conversation references, runs and fingerprints are here; the
    schedule, locks, documents, counters and run events come from `RedisCoordination`."""

    @classmethod
    async def open(
        cls,
        url: str,
        prefix: str = "xdc:",
        *,
        pool: PoolSettings | None = None,
        shards: int = DEFAULT_DUE_SHARDS,
    ) -> RedisStore:
        """Connect and check the server answers. `redis+cluster://host:port` (or `rediss+cluster://`)
        opens a Redis Cluster client seeded by that node; any other URL a standalone client."""
        pool = pool or PoolSettings()
        client = make_client(url, pool)
        try:
            await client.ping()
        except REDIS_ERRORS as exc:
            await client.aclose()
            raise StoreError(f"cannot reach Redis at {where(url)}: {type(exc).__name__}") from exc
        log.info("Redis store open at %s (prefix %r, pool %d)", where(url), prefix, pool.max_connections)
        return cls(client, prefix, pool=pool, shards=shards)

    # Connections.
    async def create_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": 1})
        created = to_us(stored.created_at)
        # Indexes first (NX: an existing entry keeps its place), so a created connection is always listed.
        await self._pipeline(
            [
                ("zadd", (self.keys.conns(), {stored.id: created}, True)),
                ("zadd", (self.keys.conv(stored.conversation_key), {stored.id: created}, True)),
                ("zadd", (self.keys.tenant(stored.teams_tenant_id), {stored.id: created}, True)),
            ]
        )
        if not await self._run("create", [self.keys.conn(stored.id)], [stored.model_dump_json()]):
            raise ConcurrencyError(f"connection {connection.id} already exists")
        return stored

    async def get_connection(self, connection_id: str) -> Connection | None:
        async with self._io() as r:
            raw = await r.get(self.keys.conn(connection_id))
        return None if raw is None else Connection.model_validate_json(raw)

    async def save_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": connection.version + 1})
        created = to_us(stored.created_at)
        # The tenant never changes; adding it again (NX) heals one written by an older version.
        await self._pipeline(
            [
                ("zadd", (self.keys.conv(stored.conversation_key), {stored.id: created}, True)),
                ("zadd", (self.keys.tenant(stored.teams_tenant_id), {stored.id: created}, True)),
            ]
        )
        args: list[str | int | bytes] = [connection.version, stored.model_dump_json()]
        saved = await self._run("save", [self.keys.conn(stored.id)], args)
        if not saved:
            raise ConcurrencyError(
                f"connection {connection.id} changed or was deleted since version {connection.version}"
            )
        previous = as_text(saved[1])
        if previous != stored.conversation_key:
            await self._pipeline([("zrem", (self.keys.conv(previous), stored.id))])
        return stored

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        index = self.keys.conns() if conversation_key is None else self.keys.conv(conversation_key)
        async with self._io() as r:
            ids = [as_text(i) for i in await r.zrange(index, 0, -1)]
        raws = await self._pipeline([("get", (self.keys.conn(i),)) for i in ids])
        found = [Connection.model_validate_json(raw) for raw in raws if raw is not None]
        # An index may name a connection since moved to another conversation (see the module doc).
        return [c for c in found if conversation_key is None or c.conversation_key == conversation_key]

    async def list_tenant_connections(self, teams_tenant_id: str) -> list[Connection]:
        if not self._tenants_indexed:
            await self.index_tenants()
        async with self._io() as r:
            ids = [as_text(i) for i in await r.zrange(self.keys.tenant(teams_tenant_id), 0, -1)]
        raws = await self._pipeline([("get", (self.keys.conn(i),)) for i in ids])
        found = [Connection.model_validate_json(raw) for raw in raws if raw is not None]
        # Like a conversation index, a tenant index may name a connection since deleted (see the module doc).
        return [c for c in found if c.teams_tenant_id == teams_tenant_id]

    async def index_tenants(self, batch: int = 500) -> int:
        """Put every connection of the global index in its tenant's index, once per deployment (for
        connections created before the tenant indexes existed); then mark it done. Idempotent and safe
        to run in several processes at once (ZADD NX of the same score). Returns how many it read."""
        async with self._io() as r:
            if await r.exists(self.keys.tenants_indexed()):
                self._tenants_indexed = True
                return 0
            entries = [(as_text(i), s) for i, s in await r.zrange(self.keys.conns(), 0, -1, withscores=True)]
        for start in range(0, len(entries), batch):
            chunk = entries[start : start + batch]
            raws = await self._pipeline([("get", (self.keys.conn(i),)) for i, _ in chunk])
            adds: list[tuple[str, tuple[Any, ...]]] = []
            for (connection_id, score), raw in zip(chunk, raws, strict=True):
                if raw is not None:
                    tenant = self.keys.tenant(Connection.model_validate_json(raw).teams_tenant_id)
                    adds.append(("zadd", (tenant, {connection_id: int(score)}, True)))
            await self._pipeline(adds)
        async with self._io() as r:
            await r.set(self.keys.tenants_indexed(), "1")
        self._tenants_indexed = True
        log.info("tenant indexes filled from %d connections", len(entries))
        return len(entries)

    async def delete_connection(self, connection_id: str) -> None:
        """Delete the connection and everything kept for it (tokens, runs, fingerprints, schedule)."""
        k = self.keys
        fixed = [k.conn(connection_id), k.tok(connection_id), k.runs(connection_id), k.fpi(connection_id)]
        for _ in range(OPTIMISTIC_ATTEMPTS):
            entities = await self._entities(connection_id)
            keys = fixed + [k.fp(connection_id, e) for e in entities]
            result = await self._run("delete", keys, list(entities))
            if int(result[0]) == 1:
                break
        else:
            raise StoreError(
                f"Redis store: fingerprints of {connection_id} kept changing during its deletion"
            )
        conversation, run_ids = as_text(result[1]), [as_text(i) for i in result[2]]
        cleanup: list[tuple[str, tuple[Any, ...]]] = [("zrem", (k.conns(), connection_id))]
        if conversation:
            cleanup.append(("zrem", (k.conv(conversation), connection_id)))
        if tenant := as_text(result[3]):
            cleanup.append(("zrem", (k.tenant(tenant), connection_id)))
        cleanup += [("delete", (k.run(i),)) for i in run_ids]
        await self._pipeline(cleanup)
        await self._drop_schedule(connection_id)

    # Tokens.
    async def put_tokens(self, connection_id: str, kind: TokenKind, blob: bytes) -> None:
        async with self._io() as r:
            await r.hset(self.keys.tok(connection_id), kind.value, bytes(blob))

    async def get_tokens(self, connection_id: str, kind: TokenKind) -> bytes | None:
        async with self._io() as r:
            raw = await r.hget(self.keys.tok(connection_id), kind.value)
        return None if raw is None else as_bytes(raw)

    async def delete_tokens(self, connection_id: str, kind: TokenKind | None = None) -> None:
        async with self._io() as r:
            if kind is None:
                await r.delete(self.keys.tok(connection_id))
            else:
                await r.hdel(self.keys.tok(connection_id), kind.value)

    async def all_token_blobs(self) -> list[tuple[str, TokenKind, bytes]]:
        start, end = self.keys.tok_pattern
        found: list[tuple[str, TokenKind, bytes]] = []
        async with self._io() as r:
            # On a cluster, scan_iter walks every primary.
            async for raw_key in r.scan_iter(match=glob_escape(start) + "*" + glob_escape(end), count=500):
                key = as_text(raw_key)
                connection_id = key[len(start) : -len(end)]
                for kind, blob in (await r.hgetall(key)).items():
                    found.append((connection_id, TokenKind(as_text(kind)), as_bytes(blob)))
        return sorted(found)

    # OAuth state.
    async def put_state(self, state: str, payload: dict[str, Any], ttl_seconds: float) -> None:
        async with self._io() as r:
            await r.set(
                self.keys.plain("state", state), json.dumps(payload), px=max(1, int(ttl_seconds * 1000))
            )

    async def take_state(self, state: str) -> dict[str, Any] | None:
        async with self._io() as r:
            raw = await r.getdel(self.keys.plain("state", state))
        return None if raw is None else dict(json.loads(raw))

    async def peek_state(self, state: str) -> dict[str, Any] | None:
        async with self._io() as r:
            raw = await r.get(self.keys.plain("state", state))
        return None if raw is None else dict(json.loads(raw))

    # Conversation references.
    async def save_reference(self, ref: ConversationRef) -> None:
        async with self._io() as r:
            await r.set(self.keys.plain("ref", ref.key), ref.model_dump_json())

    async def get_reference(self, key: str) -> ConversationRef | None:
        async with self._io() as r:
            raw = await r.get(self.keys.plain("ref", key))
        return None if raw is None else ConversationRef.model_validate_json(raw)

    async def mark_removed(self, key: str) -> None:
        name = self.keys.plain("ref", key)
        for _ in range(OPTIMISTIC_ATTEMPTS):
            async with self._io() as r:
                raw = await r.get(name)
            if raw is None:
                return
            ref = ConversationRef.model_validate_json(raw).model_copy(
                update={"removed": True, "updated_at": utcnow()}
            )
            if await self._run("swap", [name], [as_bytes(raw), ref.model_dump_json()]):
                return
        raise ConcurrencyError(f"conversation reference {key!r} kept changing")

    # Runs: the record under its own key (get_run knows only its id), the index in the connection's slot.
    async def save_run(self, run: RunRecord) -> None:
        async with self._io() as r:
            await r.set(self.keys.run(run.id), run.model_dump_json())
        args: list[str | int | bytes] = [to_us(run.started_at), run.id, RUNS_KEPT]
        dropped = await self._run("run", [self.keys.runs(run.connection_id)], args)
        await self._pipeline([("delete", (self.keys.run(as_text(i)),)) for i in dropped])

    async def list_runs(self, connection_id: str, limit: int = 10) -> list[RunRecord]:
        if limit <= 0:
            return []
        async with self._io() as r:
            ids = await r.zrevrange(self.keys.runs(connection_id), 0, limit - 1)
        raws = await self._pipeline([("get", (self.keys.run(as_text(i)),)) for i in ids])
        return [RunRecord.model_validate_json(raw) for raw in raws if raw is not None]

    async def get_run(self, run_id: str) -> RunRecord | None:
        async with self._io() as r:
            raw = await r.get(self.keys.run(run_id))
        return None if raw is None else RunRecord.model_validate_json(raw)

    # Fingerprints: one hash per entity, and the set of entities that have one.
    async def _entities(self, connection_id: str) -> list[str]:
        async with self._io() as r:
            return sorted(as_text(e) for e in await r.smembers(self.keys.fpi(connection_id)))

    async def get_fingerprints(self, connection_id: str, entity: str) -> dict[str, str]:
        async with self._io() as r:
            raw = await r.hgetall(self.keys.fp(connection_id, entity))
        return {as_text(k): as_text(v) for k, v in raw.items()}

    async def put_fingerprints(self, connection_id: str, entity: str, fingerprints: dict[str, str]) -> None:
        keys = [self.keys.fp(connection_id, entity), self.keys.fpi(connection_id)]
        args: list[str | int | bytes] = [entity]
        for field, value in fingerprints.items():
            args += [field, value]
        await self._run("fp_put", keys, args)

    async def delete_fingerprints(self, connection_id: str) -> None:
        for _ in range(OPTIMISTIC_ATTEMPTS):
            entities = await self._entities(connection_id)
            keys = [self.keys.fpi(connection_id)] + [self.keys.fp(connection_id, e) for e in entities]
            if await self._run("fp_delete", keys, list(entities)):
                return
        raise StoreError(f"Redis store: fingerprints of {connection_id} kept changing")

    # The store itself.
    async def ping(self) -> bool:
        try:
            async with self._io() as r:
                return bool(await r.ping())
        except StoreError:
            return False

    async def close(self) -> None:
        await self._r.aclose()

    async def dump_all(self) -> list[tuple[str, bytes]]:
        """Strings as stored; hashes, sets, sorted sets and streams as JSON (token hashes: one blob per kind)."""
        start, end = self.keys.tok_pattern
        dumped: list[tuple[str, bytes]] = []
        async with self._io() as r:
            async for raw_key in r.scan_iter(match=glob_escape(self.prefix) + "*", count=500):
                key = as_text(raw_key)
                kind = as_text(await r.type(key))
                if kind == "string":
                    value = await r.get(key)
                    if value is not None:
                        dumped.append((key, as_bytes(value)))
                elif kind == "hash" and key.startswith(start) and key.endswith(end):
                    for field, blob in (await r.hgetall(key)).items():
                        dumped.append((f"{key}/{as_text(field)}", as_bytes(blob)))
                elif kind == "hash":
                    fields = {as_text(f): as_text(v) for f, v in (await r.hgetall(key)).items()}
                    dumped.append((key, json.dumps(fields).encode()))
                elif kind == "zset":
                    members: list[Any] = list(await r.zrange(key, 0, -1, withscores=True))
                    dumped.append((key, json.dumps([[as_text(m), s] for m, s in members]).encode()))
                elif kind == "set":
                    dumped.append(
                        (key, json.dumps(sorted(as_text(m) for m in await r.smembers(key))).encode())
                    )
                elif kind == "stream":
                    entries = await r.xrange(key)
                    rows = [
                        [as_text(i), {as_text(f): as_text(v) for f, v in fs.items()}] for i, fs in entries
                    ]
                    dumped.append((key, json.dumps(rows).encode()))
        return sorted(dumped)
