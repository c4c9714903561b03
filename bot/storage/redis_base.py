"""What every part of the Redis store shares: the client (standalone or cluster) behind a bounded,
waiting pool, the key names (`bot.storage.redis_keys`), the registered Lua scripts, and the
translation of redis-py's errors into `StoreError`.

One code path serves both deployments: `redis+cluster://` / `rediss+cluster://` URLs open a
`redis.asyncio.cluster.RedisCluster` (seeded by that node, which tells the client about the others),
any other URL a standalone `redis.asyncio.Redis`. The commands used are the same; nothing relies on
MULTI/WATCH (redis-py's cluster pipelines run no transactions), only on one-slot Lua scripts and
non-transactional pipelines, which the cluster client splits by node.

The pool waits instead of failing: redis-py's default pool raises `MaxConnectionsError` once
`max_connections` calls are in flight, and its cluster client has no waiting pool at all (a node
holds at most `max_connections` and then raises). So every call first takes one of
`max_connections` slots (an asyncio semaphore), waiting up to `pool_timeout` seconds; a call holds
at most one connection per node, so no node's pool is ever exceeded. Standalone, the pool itself is
a `BlockingConnectionPool` of the same size as well.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.errors import StoreError
from bot.storage.redis_keys import DEFAULT_DUE_SHARDS, Keys
from bot.storage.redis_scripts import SCRIPTS

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
# What redis-py raises: its cluster client's own errors (no slot map, keys across slots) are not RedisErrors.
REDIS_ERRORS = (RedisError, RedisClusterException)
Client = Redis | RedisCluster


@dataclass(frozen=True)
class PoolSettings:
    """REDIS_MAX_CONNECTIONS and REDIS_POOL_TIMEOUT_SECONDS (bot.config), per store object."""

    max_connections: int = 50
    timeout: float = 10.0


def ttl_ms(seconds: float) -> int:
    """A TTL in whole milliseconds, never 0 (Redis rejects a zero expiry)."""
    return max(1, int(seconds * 1000))


def as_text(raw: object) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def as_bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def where(url: str) -> str:
    """The server's address without credentials, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme in CLUSTER_SCHEMES


def make_client(url: str, pool: PoolSettings) -> Client:
    """A client for `url`: dropped connections are retried with backoff, so the store survives a
    server restart or failover (a cluster client also refreshes its slot map)."""
    common: dict[str, Any] = {
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), 8),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": 5,
        "socket_timeout": 10,
        "health_check_interval": 15,
    }
    parts = urlsplit(url)
    if parts.scheme in CLUSTER_SCHEMES:
        plain = urlunsplit(parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme]))
        return RedisCluster.from_url(plain, max_connections=pool.max_connections, **common)
    blocking = BlockingConnectionPool.from_url(
        url, max_connections=pool.max_connections, timeout=pool.timeout, **common
    )
    return Redis.from_pool(blocking)


@contextmanager
def guard() -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        raise StoreError(f"Redis {type(exc).__name__}: {exc}") from exc  # worded by cards.failure_words


class RedisBase:
    """The client, key names and scripts the store's parts share."""

    def __init__(
        self,
        client: Client,
        prefix: str = "xdc:",
        *,
        pool: PoolSettings | None = None,
        shards: int = DEFAULT_DUE_SHARDS,
    ) -> None:
        self._r: Any = client  # Redis or RedisCluster: the same commands, typed apart by redis-py
        self.prefix = prefix
        self.keys = Keys(prefix, shards)
        self.pool = pool or PoolSettings()
        self.cluster = isinstance(client, RedisCluster)
        self._slots = asyncio.Semaphore(self.pool.max_connections)
        self._tenants_indexed = False  # seen the mark of `RedisStore.index_tenants`
        # Registered scripts are re-loaded by redis-py when a server answers NOSCRIPT (after a
        # restart, or on a cluster node that has not seen them yet).
        self._scripts = {name: client.register_script(body) for name, body in SCRIPTS.items()}

    @asynccontextmanager
    async def _io(self) -> AsyncIterator[Any]:
        """Hold one pool slot (waiting for one up to the pool timeout) and translate errors."""
        try:
            async with asyncio.timeout(self.pool.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreError(
                f"Redis store: no connection free within {self.pool.timeout:g} s "
                f"({self.pool.max_connections} in use; REDIS_MAX_CONNECTIONS)"
            ) from None
        try:
            with guard():
                yield self._r
        finally:
            self._slots.release()

    async def _run(self, script: str, keys: list[str], args: list[str | int | bytes]) -> Any:
        async with self._io():
            return await self._scripts[script](keys=keys, args=args)

    async def _run_many(
        self, script: str, calls: list[tuple[list[str], list[str | int | bytes]]]
    ) -> list[Any]:
        """One script on several slots in one round trip per node (each call atomic, not the whole).
        A server that does not know the script yet (restarted, or a node never used) gets it loaded,
        and the calls are sent again."""
        body = self._scripts[script]
        for attempt in range(2):
            async with self._io() as r, r.pipeline(transaction=False) as pipe:
                for keys, args in calls:
                    pipe.evalsha(body.sha, len(keys), *keys, *args)
                results = list(await pipe.execute(raise_on_error=False))
            missing = [res for res in results if isinstance(res, NoScriptError)]
            if not missing or attempt:
                break
            async with self._io() as r:
                await r.script_load(body.script)  # a cluster client loads it on every primary
        for res in results:
            if isinstance(res, Exception):
                with guard():
                    raise res
        return results

    async def _pipeline(self, calls: list[tuple[str, tuple[Any, ...]]]) -> list[Any]:
        """Several one-key commands in one round trip per node (not atomic)."""
        if not calls:
            return []
        async with self._io() as r, r.pipeline(transaction=False) as pipe:
            for name, args in calls:
                getattr(pipe, name)(*args)
            return list(await pipe.execute())
