"""The parts of the Redis store that several processes contend for: the run schedule with its leases,
named locks, documents written at an eTag, and expiring counters.

Each step is one Lua script (`bot.storage.redis_scripts`) or one MULTI transaction, and lease times
come from the Redis server's clock (TIME), so processes on machines with skewed clocks still agree on
when a lease ends. The schedule follows the rules of `bot.storage.common`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from bot.errors import ConcurrencyError
from bot.storage.base import Claim, Document
from bot.storage.common import from_us, to_us
from bot.storage.redis_base import RedisBase, as_text, guard, ttl_ms


class RedisCoordination(RedisBase):
    """Schedule, locks, documents and counters of `RedisStore`."""

    # Schedule (see _SCHEDULE_LIB in bot.storage.redis_scripts).
    def _sched_keys(self, connection_id: str) -> list[str]:
        return [self._k("due"), self._k("due:od"), self._k("leases"), self._k("sched", connection_id)]

    async def schedule(self, connection_id: str, due_at: datetime, *, on_demand: bool = False) -> None:
        """Set or move the due time; an on-demand request already waiting is kept (at the earlier time)."""
        args: list[str | int | bytes] = [connection_id, to_us(due_at), "1" if on_demand else "0"]
        await self._run("schedule", self._sched_keys(connection_id), args)

    async def unschedule(self, connection_id: str) -> None:
        """Forget the due time. A run in progress keeps its lease (so nothing else starts it);
        if that lease expires, the run is not due again."""
        await self._run("unschedule", self._sched_keys(connection_id), [connection_id])

    async def claim_due(self, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
        if limit <= 0:
            return []
        keys = self._sched_keys("")[:3]
        args: list[str | int | bytes] = [
            self._k("sched"),
            to_us(now),
            owner,
            ttl_ms(lease_seconds) * 1000,
            limit,
        ]
        until_raw, flat = await self._run("claim", keys, args)
        until = from_us(int(until_raw))
        return [
            Claim(as_text(flat[i]), from_us(int(flat[i + 1])), owner, until, as_text(flat[i + 2]) == "1")
            for i in range(0, len(flat), 3)
        ]

    async def extend_lease(self, connection_id: str, owner: str, lease_seconds: float) -> bool:
        args: list[str | int | bytes] = [connection_id, owner, ttl_ms(lease_seconds) * 1000]
        return bool(await self._run("extend", self._sched_keys(connection_id), args))

    async def release(self, connection_id: str, owner: str, next_due: datetime | None) -> bool:
        """End our lease. The next due time is `next_due` or anything scheduled during the run,
        whichever is earlier (a request made during the run is never lost)."""
        following = "" if next_due is None else str(to_us(next_due))
        args: list[str | int | bytes] = [connection_id, owner, following]
        return bool(await self._run("release", self._sched_keys(connection_id), args))

    async def get_due(self, connection_id: str) -> datetime | None:
        """The next due time: while a run is leased, the one scheduled for after it (if any)."""
        due, _ = await self._run("inspect", self._sched_keys(connection_id), [connection_id])
        return None if due is None else from_us(int(due))

    async def lease_holder(self, connection_id: str) -> str | None:
        _, owner = await self._run("inspect", self._sched_keys(connection_id), [connection_id])
        return None if owner is None else as_text(owner)

    # Locks.
    async def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lock, or refresh it if `owner` already holds it."""
        return bool(
            await self._run("lock", [self._k("lock", name)], [json.dumps(owner), ttl_ms(ttl_seconds)])
        )

    async def release_lock(self, name: str, owner: str) -> None:
        await self._run("unlock", [self._k("lock", name)], [json.dumps(owner)])

    # Documents.
    async def read_documents(self, keys: list[str]) -> dict[str, Document]:
        if not keys:
            return {}
        with guard():
            async with self._r.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(self._k("doc", key), ["value", "etag"])
                rows = await pipe.execute()
        return {
            key: Document(json.loads(value), as_text(etag))
            for key, (value, etag) in zip(keys, rows, strict=True)
            if value is not None and etag is not None
        }

    async def write_document(self, key: str, value: dict[str, Any], expected_etag: str | None) -> str:
        """A missing document has no eTag: writing it with an expected eTag other than "*" conflicts."""
        etag = uuid.uuid4().hex
        expected = "" if expected_etag in (None, "*") else str(expected_etag)
        if not await self._run("doc", [self._k("doc", key)], [json.dumps(value), etag, expected]):
            raise ConcurrencyError(f"document {key!r} changed since it was read")
        return etag

    async def delete_documents(self, keys: list[str]) -> None:
        if keys:
            with guard():
                await self._r.delete(*[self._k("doc", key) for key in keys])

    # Counters.
    async def incr_counter(self, name: str, ttl_seconds: float) -> int:
        key = self._k("ctr", name)
        with guard():
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, ttl_ms(ttl_seconds), nx=True)
                value, _ = await pipe.execute()
        return int(value)
