"""The parts of the Redis store that several processes contend for, besides the schedule
(`bot.storage.redis_schedule`): named locks, documents written at an eTag, expiring counters, and
the run-event feed.

Each step is one single-key Lua script (`bot.storage.redis_scripts`) or one command, so it is atomic
across processes and runs unchanged on Redis Cluster.

The run-event feed is a Redis stream (https://redis.io/docs/latest/develop/data-types/streams/):
XADD with `MAXLEN ~` keeps it near `RUN_EVENTS_KEPT` entries ("~" lets Redis trim whole macro nodes,
which is much cheaper than an exact cap: https://redis.io/docs/latest/commands/xadd/), and a reader
reads on with XRANGE from an exclusive start, `(<last id>` (Redis 6.2 and later:
https://redis.io/docs/latest/commands/xrange/). The cursor is the stream entry id, whose first part is
the server's time in milliseconds.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from bot.errors import ConcurrencyError
from bot.storage.base import Document, RunEvent, RunEventKind
from bot.storage.common import RUN_EVENTS_KEPT, from_us
from bot.storage.redis_base import as_text, ttl_ms
from bot.storage.redis_schedule import RedisSchedule


class RedisCoordination(RedisSchedule):
    """Schedule, locks, documents, counters and run events of `RedisStore`."""

    run_events_kept = RUN_EVENTS_KEPT

    # Locks.
    async def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool:
        """Take the lock, or refresh it if `owner` already holds it."""
        key = self.keys.plain("lock", name)
        return bool(await self._run("lock", [key], [json.dumps(owner), ttl_ms(ttl_seconds)]))

    async def release_lock(self, name: str, owner: str) -> None:
        await self._run("unlock", [self.keys.plain("lock", name)], [json.dumps(owner)])

    # Documents.
    async def read_documents(self, keys: list[str]) -> dict[str, Document]:
        if not keys:
            return {}
        rows = await self._pipeline(
            [("hmget", (self.keys.plain("doc", key), ["value", "etag"])) for key in keys]
        )
        return {
            key: Document(json.loads(value), as_text(etag))
            for key, (value, etag) in zip(keys, rows, strict=True)
            if value is not None and etag is not None
        }

    async def write_document(self, key: str, value: dict[str, Any], expected_etag: str | None) -> str:
        """A missing document has no eTag: writing it with an expected eTag other than "*" conflicts."""
        etag = uuid.uuid4().hex
        expected = "" if expected_etag in (None, "*") else str(expected_etag)
        if not await self._run("doc", [self.keys.plain("doc", key)], [json.dumps(value), etag, expected]):
            raise ConcurrencyError(f"document {key!r} changed since it was read")
        return etag

    async def delete_documents(self, keys: list[str]) -> None:
        # One DEL per key: on a cluster the documents live in different slots.
        await self._pipeline([("delete", (self.keys.plain("doc", key),)) for key in keys])

    # Counters.
    async def incr_counter(self, name: str, ttl_seconds: float) -> int:
        return int(await self._run("incr", [self.keys.plain("ctr", name)], [ttl_ms(ttl_seconds)]))

    # The run-event feed.
    async def append_run_event(self, connection_id: str, run_id: str, kind: RunEventKind) -> str:
        fields: dict[Any, Any] = {"c": connection_id, "r": run_id, "k": RunEventKind(kind).value}
        async with self._io() as r:
            return as_text(
                await r.xadd(self.keys.events(), fields, maxlen=self.run_events_kept, approximate=True)
            )

    async def read_run_events(self, after: str = "", limit: int = 100) -> tuple[list[RunEvent], str]:
        if limit <= 0:
            return [], after
        async with self._io() as r:
            rows = await r.xrange(self.keys.events(), min=f"({after}" if after else "-", max="+", count=limit)
        events = [_event(as_text(raw_id), fields) for raw_id, fields in rows]
        return events, events[-1].cursor if events else after

    async def run_events_tail(self) -> str:
        async with self._io() as r:
            rows = await r.xrevrange(self.keys.events(), max="+", min="-", count=1)
        return as_text(rows[0][0]) if rows else ""


def _event(entry_id: str, fields: dict[Any, Any]) -> RunEvent:
    values = {as_text(k): as_text(v) for k, v in fields.items()}
    millis = int(entry_id.split("-", 1)[0])
    return RunEvent(entry_id, values["c"], values["r"], RunEventKind(values["k"]), from_us(millis * 1000))
