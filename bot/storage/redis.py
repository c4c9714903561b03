"""The production store: Redis, shared by several bot and worker processes.

Every read-modify-write is one Lua script (or a WATCH/MULTI transaction where a value must be
re-serialised by pydantic), so it is atomic across processes: a connection version, a due-run
claim, a lock, a document eTag. Lease times come from the Redis server's own clock (TIME), so
processes on machines with skewed clocks still agree on when a lease ends. Scripts address a few
keys they derive from the prefix: this targets a standalone Redis (or one shard), not a cluster.

The store is in four modules: this one (connections, tokens, OAuth state, conversation references,
runs, fingerprints, and opening the client), `redis_coordination` (schedule, locks, documents,
counters), `redis_base` (client, key names, error translation) and `redis_scripts` (the Lua).
`to_us` and `from_us` live in `bot.storage.common` and are re-exported here.

Layout under the prefix (default "xdc:"): conn:<id> JSON, conns and conns:conv:<key> (zsets by
creation time), tok:<id> (hash kind -> encrypted blob), state:<state> (JSON with a TTL),
ref:<key> JSON, run:<id> JSON and runs:<connection> (zset by start time, capped), fp:<json
[connection, entity]> (hash) and fpi:<connection> (set of those keys), sched:<id> (hash) with the
due, due:od and leases zsets, lock:<name>, doc:<key> (hash value, etag), ctr:<name>.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import Connection, ConversationRef, RunRecord, TokenKind, utcnow
from bot.storage.common import RUNS_KEPT, from_us, to_us
from bot.storage.redis_base import as_bytes, as_text, glob_escape, guard, ttl_ms, where
from bot.storage.redis_coordination import RedisCoordination

__all__ = ["RUNS_KEPT", "RedisStore", "from_us", "to_us"]

log = logging.getLogger(__name__)


class RedisStore(RedisCoordination):
    """Every store protocol of `bot.storage.base` on Redis, safe for several processes.

    Connections, tokens, OAuth state, conversation references, runs and fingerprints are here; the
    schedule, locks, documents and counters come from `RedisCoordination`."""

    @classmethod
    async def open(cls, url: str, prefix: str = "xdc:") -> RedisStore:
        """Connect and check the server answers. Dropped connections are retried with backoff,
        so the store survives a server restart or failover."""
        client = Redis.from_url(
            url,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 8),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
            socket_connect_timeout=5,
            socket_timeout=10,
            health_check_interval=15,
        )
        try:
            await client.ping()
        except RedisError as exc:
            await client.aclose()
            raise StoreError(f"cannot reach Redis at {where(url)}: {type(exc).__name__}") from exc
        log.info("Redis store open at %s (prefix %r)", where(url), prefix)
        return cls(client, prefix)

    # Connections.
    async def create_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": 1})
        keys = [self._k("conn", stored.id), self._k("conns"), self._k("conns:conv", stored.conversation_key)]
        args: list[str | int | bytes] = [stored.model_dump_json(), to_us(stored.created_at), stored.id]
        if not await self._run("create", keys, args):
            raise ConcurrencyError(f"connection {connection.id} already exists")
        return stored

    async def get_connection(self, connection_id: str) -> Connection | None:
        with guard():
            raw = await self._r.get(self._k("conn", connection_id))
        return None if raw is None else Connection.model_validate_json(raw)

    async def save_connection(self, connection: Connection) -> Connection:
        stored = connection.model_copy(update={"version": connection.version + 1})
        keys = [self._k("conn", stored.id), self._k("conns"), self._k("conns:conv", stored.conversation_key)]
        args: list[str | int | bytes] = [
            connection.version,
            stored.model_dump_json(),
            stored.id,
            to_us(stored.created_at),
            self._k("conns:conv"),
        ]
        if not await self._run("save", keys, args):
            raise ConcurrencyError(
                f"connection {connection.id} changed or was deleted since version {connection.version}"
            )
        return stored

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        index = self._k("conns") if conversation_key is None else self._k("conns:conv", conversation_key)
        with guard():
            ids = await self._r.zrange(index, 0, -1)
            raws = await self._r.mget([self._k("conn", as_text(i)) for i in ids]) if ids else []
        return [Connection.model_validate_json(raw) for raw in raws if raw is not None]

    async def delete_connection(self, connection_id: str) -> None:
        """Delete the connection and everything kept for it (tokens, runs, fingerprints, schedule)."""
        keys = [
            self._k("conn", connection_id),
            self._k("conns"),
            self._k("tok", connection_id),
            self._k("runs", connection_id),
            self._k("fpi", connection_id),
            self._k("sched", connection_id),
            self._k("due"),
            self._k("due:od"),
            self._k("leases"),
        ]
        await self._run("delete", keys, [connection_id, self.prefix])

    # Tokens.
    async def put_tokens(self, connection_id: str, kind: TokenKind, blob: bytes) -> None:
        with guard():
            await self._r.hset(self._k("tok", connection_id), kind.value, bytes(blob))

    async def get_tokens(self, connection_id: str, kind: TokenKind) -> bytes | None:
        with guard():
            raw = await self._r.hget(self._k("tok", connection_id), kind.value)
        return None if raw is None else as_bytes(raw)

    async def delete_tokens(self, connection_id: str, kind: TokenKind | None = None) -> None:
        with guard():
            if kind is None:
                await self._r.delete(self._k("tok", connection_id))
            else:
                await self._r.hdel(self._k("tok", connection_id), kind.value)

    async def all_token_blobs(self) -> list[tuple[str, TokenKind, bytes]]:
        start = self._k("tok")
        found: list[tuple[str, TokenKind, bytes]] = []
        with guard():
            async for key in self._r.scan_iter(match=glob_escape(start) + "*", count=500):
                connection_id = as_text(key)[len(start) :]
                for kind, blob in (await self._r.hgetall(key)).items():
                    found.append((connection_id, TokenKind(as_text(kind)), as_bytes(blob)))
        return sorted(found)

    # OAuth state.
    async def put_state(self, state: str, payload: dict[str, Any], ttl_seconds: float) -> None:
        with guard():
            await self._r.set(self._k("state", state), json.dumps(payload), px=ttl_ms(ttl_seconds))

    async def take_state(self, state: str) -> dict[str, Any] | None:
        with guard():
            raw = await self._r.getdel(self._k("state", state))
        return None if raw is None else dict(json.loads(raw))

    async def peek_state(self, state: str) -> dict[str, Any] | None:
        with guard():
            raw = await self._r.get(self._k("state", state))
        return None if raw is None else dict(json.loads(raw))

    # Conversation references.
    async def save_reference(self, ref: ConversationRef) -> None:
        with guard():
            await self._r.set(self._k("ref", ref.key), ref.model_dump_json())

    async def get_reference(self, key: str) -> ConversationRef | None:
        with guard():
            raw = await self._r.get(self._k("ref", key))
        return None if raw is None else ConversationRef.model_validate_json(raw)

    async def mark_removed(self, key: str) -> None:
        name = self._k("ref", key)

        async def apply(pipe: Pipeline) -> None:
            raw = await pipe.get(name)
            if raw is None:
                return
            ref = ConversationRef.model_validate_json(raw).model_copy(
                update={"removed": True, "updated_at": utcnow()}
            )
            pipe.multi()  # type: ignore[no-untyped-call]
            pipe.set(name, ref.model_dump_json())

        with guard():
            await self._r.transaction(apply, name)

    # Runs.
    async def save_run(self, run: RunRecord) -> None:
        keys = [self._k("run", run.id), self._k("runs", run.connection_id)]
        await self._run(
            "run", keys, [run.model_dump_json(), to_us(run.started_at), run.id, RUNS_KEPT, self._k("run")]
        )

    async def list_runs(self, connection_id: str, limit: int = 10) -> list[RunRecord]:
        if limit <= 0:
            return []
        with guard():
            ids = await self._r.zrevrange(self._k("runs", connection_id), 0, limit - 1)
            raws = await self._r.mget([self._k("run", as_text(i)) for i in ids]) if ids else []
        return [RunRecord.model_validate_json(raw) for raw in raws if raw is not None]

    async def get_run(self, run_id: str) -> RunRecord | None:
        with guard():
            raw = await self._r.get(self._k("run", run_id))
        return None if raw is None else RunRecord.model_validate_json(raw)

    # Fingerprints.
    def _fp(self, connection_id: str, entity: str) -> str:
        # JSON keeps (connection, entity) unambiguous whatever characters the two contain.
        return self._k("fp", json.dumps([connection_id, entity]))

    async def get_fingerprints(self, connection_id: str, entity: str) -> dict[str, str]:
        with guard():
            raw = await self._r.hgetall(self._fp(connection_id, entity))
        return {as_text(k): as_text(v) for k, v in raw.items()}

    async def put_fingerprints(self, connection_id: str, entity: str, fingerprints: dict[str, str]) -> None:
        key, index = self._fp(connection_id, entity), self._k("fpi", connection_id)
        with guard():
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if fingerprints:
                    mapping: dict[Any, Any] = dict(fingerprints)
                    pipe.hset(key, mapping=mapping)
                    pipe.sadd(index, key)
                else:
                    pipe.srem(index, key)
                await pipe.execute()

    async def delete_fingerprints(self, connection_id: str) -> None:
        await self._run("fp_delete", [self._k("fpi", connection_id)], [])

    # The store itself.
    async def ping(self) -> bool:
        try:
            return bool(await self._r.ping())
        except RedisError:
            return False

    async def close(self) -> None:
        await self._r.aclose()

    async def dump_all(self) -> list[tuple[str, bytes]]:
        """Strings as stored; hashes, sets and sorted sets as JSON (token hashes: one blob per kind)."""
        dumped: list[tuple[str, bytes]] = []
        with guard():
            async for raw_key in self._r.scan_iter(match=glob_escape(self.prefix) + "*", count=500):
                key = as_text(raw_key)
                kind = as_text(await self._r.type(key))
                if kind == "string":
                    value = await self._r.get(key)
                    if value is not None:
                        dumped.append((key, as_bytes(value)))
                elif kind == "hash" and key.startswith(self._k("tok")):
                    for field, blob in (await self._r.hgetall(key)).items():
                        dumped.append((f"{key}/{as_text(field)}", as_bytes(blob)))
                elif kind == "hash":
                    fields = {as_text(f): as_text(v) for f, v in (await self._r.hgetall(key)).items()}
                    dumped.append((key, json.dumps(fields).encode()))
                elif kind == "zset":
                    members: list[Any] = list(await self._r.zrange(key, 0, -1, withscores=True))
                    dumped.append((key, json.dumps([[as_text(m), s] for m, s in members]).encode()))
                elif kind == "set":
                    dumped.append(
                        (key, json.dumps(sorted(as_text(m) for m in await self._r.smembers(key))).encode())
                    )
        return sorted(dumped)
