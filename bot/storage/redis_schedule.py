"""The run schedule of the Redis store, in due-set shards that each live in one hash slot.

A connection's entry and the due, on-demand and lease queues it sits in belong to the shard its id
hashes to (`bot.storage.redis_keys`), so `schedule`, `release` and the rest are one script on one
shard. Claiming reads every shard first, in one pipelined round trip (read only: how many leases
expired, and the due times of the first `limit` entries of both queues), merges what it saw in
claim order (expired leases first: their run is already late; then on demand; then by due time) and
so decides how many of the first `limit` each shard holds; then each of those shards claims that
many of its own due entries in one script (`_CLAIM`, all in one more round trip), which settles
expired leases and takes entries in the same order. An entry is claimed once whatever the
interleaving: only the scripts change entries, one at a time per shard. Under contention a shard
may hand out other entries than the ones seen (another process took those), never entries that are
not due; if a shard runs short, the claimer reads again (up to `CLAIM_ROUNDS` times). On one shard
(`REDIS_DUE_SHARDS=1`) the read is skipped.

Lease times come from each Redis server's clock (TIME, inside the scripts, the read's included).
The read is a script too (`_PEEK`) only so that it can answer with the due times alone: parsing
`limit` members with scores from each of 16 shards cost a claim about 8 ms of CPU in redis-py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from bot.storage.base import Claim
from bot.storage.common import from_us, to_us
from bot.storage.redis_base import RedisBase, as_text, ttl_ms

CLAIM_ROUNDS = 8


class RedisSchedule(RedisBase):
    """`schedule` ... `lease_holder` of `RedisStore`."""

    def _entry_keys(self, connection_id: str) -> list[str]:
        return self.keys.queues(self.keys.shard(connection_id))

    async def schedule(self, connection_id: str, due_at: datetime, *, on_demand: bool = False) -> None:
        """Set or move the due time; an on-demand request already waiting is kept (at the earlier time)."""
        args: list[str | int | bytes] = [connection_id, to_us(due_at), "1" if on_demand else "0"]
        await self._run("schedule", self._entry_keys(connection_id), args)

    async def unschedule(self, connection_id: str) -> None:
        """Forget the due time. A run in progress keeps its lease (so nothing else starts it);
        if that lease expires, the run is not due again."""
        await self._run("unschedule", self._entry_keys(connection_id), [connection_id])

    async def _drop_schedule(self, connection_id: str) -> None:
        """Forget the entry, lease and all (its connection was deleted)."""
        await self._run("drop", self._entry_keys(connection_id), [connection_id])

    async def claim_due(self, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
        if limit <= 0:
            return []
        due_by, lease_us = to_us(now), ttl_ms(lease_seconds) * 1000
        claimed: list[Claim] = []
        for _ in range(CLAIM_ROUNDS):
            wanted = limit - len(claimed)
            shares = await self._shares(due_by, wanted)
            if not shares:
                break
            calls: list[tuple[list[str], list[str | int | bytes]]] = [
                (self.keys.queues(k), [due_by, owner, lease_us, n]) for k, n in shares.items()
            ]
            got = [
                claim for result in await self._run_many("claim", calls) for claim in _claims(result, owner)
            ]
            claimed += got
            if len(got) >= wanted:
                break  # else others took some of what was seen: read again
        # Across shards, in claim order (each shard's claims already are).
        return sorted(claimed, key=lambda c: (not c.on_demand, c.due_at))

    async def _shares(self, due_by: int, limit: int) -> dict[int, int]:
        """How many of the first `limit` claimable entries each shard holds (as seen now)."""
        if self.keys.shards == 1:
            return {0: limit}
        calls: list[tuple[list[str], list[str | int | bytes]]] = [
            (self.keys.queues(k), [due_by, limit]) for k in range(self.keys.shards)
        ]
        # (class, time, shard): expired leases first, then on demand, then by due time.
        seen: list[tuple[int, int, int]] = []
        for shard, (expired, on_demand, regular) in enumerate(await self._run_many("peek", calls)):
            seen += [(0, 0, shard)] * min(int(expired), limit)
            for kind, times in ((1, on_demand), (2, regular)):
                seen += [(kind, int(float(t)), shard) for t in as_text(times).split(",") if t]
        seen.sort()
        return dict(Counter(shard for _, _, shard in seen[:limit]))

    async def extend_lease(self, connection_id: str, owner: str, lease_seconds: float) -> bool:
        args: list[str | int | bytes] = [connection_id, owner, ttl_ms(lease_seconds) * 1000]
        return bool(await self._run("extend", self._entry_keys(connection_id), args))

    async def release(self, connection_id: str, owner: str, next_due: datetime | None) -> bool:
        """End our lease. The next due time is `next_due` or anything scheduled during the run,
        whichever is earlier (a request made during the run is never lost)."""
        following = "" if next_due is None else str(to_us(next_due))
        args: list[str | int | bytes] = [connection_id, owner, following]
        return bool(await self._run("release", self._entry_keys(connection_id), args))

    async def get_due(self, connection_id: str) -> datetime | None:
        """The next due time: while a run is leased, the one scheduled for after it (if any)."""
        due, _ = await self._run("inspect", self._entry_keys(connection_id), [connection_id])
        return None if due is None else from_us(int(due))

    async def lease_holder(self, connection_id: str) -> str | None:
        _, owner = await self._run("inspect", self._entry_keys(connection_id), [connection_id])
        return None if owner is None else as_text(owner)


def _claims(result: list[Any], owner: str) -> list[Claim]:
    """What `_CLAIM` returned: {lease end, {id, due, on demand}...}."""
    until_raw, flat = result
    until = from_us(int(until_raw))
    return [
        Claim(as_text(flat[i]), from_us(int(as_text(flat[i + 1]))), owner, until, as_text(flat[i + 2]) == "1")
        for i in range(0, len(flat), 3)
    ]
