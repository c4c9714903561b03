"""A one-shot move of a standalone Redis store from the first key layout to the cluster-ready one.

The first layout (before issue 18) named keys without hash tags: `conn:<id>`, `tok:<id>`,
`runs:<id>`, `fp:<json [id, entity]>` with `fpi:<id>` (a set of those keys), and one schedule:
`sched:<id>` hashes in the global `due:`, `due:od:` and `leases:` sorted sets. The new layout
(`bot.storage.redis_keys`) keeps the names of everything else (`conns:`, `conns:conv:<key>`,
`run:<id>`, `state:`, `ref:`, `lock:`, `doc:`, `ctr:`), so only those keys move: renamed into their
connection's slot, and schedule entries rewritten into their shard (leases and pending requests
included, so a run in progress is neither lost nor started twice).

Run it once, on the standalone server, with every bot and worker process stopped:
    python -m bot.storage.redis_migrate            (reads REDIS_URL)
It is idempotent: a second run finds nothing of the first layout. It also fills the per-Teams-tenant
indexes of connections made before they existed (on a cluster, only that), which the store otherwise
does itself at its first tenant listing (`RedisStore.index_tenants`). To move to a Redis Cluster,
migrate first, then copy the keys over (`redis-cli --cluster import`). Nothing could be re-derived
instead: tokens are the customers' sign-ins, and fingerprints spare a full rewrite to Dynamics.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter

from bot.errors import StoreError
from bot.storage.redis import RedisStore
from bot.storage.redis_base import as_text, glob_escape

log = logging.getLogger(__name__)


async def _old_keys(store: RedisStore, kind: str) -> list[tuple[str, str]]:
    """(key, name after `<prefix><kind>:`) of every first-layout key of that kind."""
    start = store.keys.v1(kind)
    async with store._io() as r:
        found = [as_text(k) async for k in r.scan_iter(match=glob_escape(start) + "*", count=500)]
    return [(key, key[len(start) :]) for key in found]


async def migrate_first_layout(store: RedisStore) -> dict[str, int]:
    """Move every first-layout key; returns how many of each kind moved."""
    if store.cluster:
        raise StoreError("the first key layout only existed on a standalone Redis: migrate there first")
    moved: Counter[str] = Counter()
    k = store.keys
    renames = {"conn": k.conn, "tok": k.tok, "runs": k.runs}
    for kind, new_name in renames.items():
        for key, connection_id in await _old_keys(store, kind):
            async with store._io() as r:
                if await r.renamenx(key, new_name(connection_id)):
                    moved[kind] += 1
                else:
                    log.warning("not moved: %s (the new key exists already)", key)
    for key, connection_id in await _old_keys(store, "fpi"):
        async with store._io() as r:
            for member in await r.smembers(key):
                old = as_text(member)
                _, entity = json.loads(old[len(k.v1("fp")) :])
                if await r.exists(old):
                    await r.rename(old, k.fp(connection_id, entity))
                    await r.sadd(k.fpi(connection_id), entity)
                    moved["fp"] += 1
            await r.delete(key)
    for key, connection_id in await _old_keys(store, "sched"):
        async with store._io() as r:
            fields = {as_text(f): as_text(v) for f, v in (await r.hgetall(key)).items()}
            due, od, leases, entries = k.queues(k.shard(connection_id))
            if fields:
                # The entry as the schedule scripts keep it (bot.storage.redis_scripts._SCHEDULE_LIB).
                entry = {"lease" if name == "until" else name: value for name, value in fields.items()}
                await r.hset(entries, connection_id, json.dumps(entry))
                if "owner" in fields:
                    await r.zadd(leases, {connection_id: int(fields["until"])})
                elif "due" in fields:
                    await r.zadd(od if fields.get("od") == "1" else due, {connection_id: int(fields["due"])})
                moved["sched"] += 1
            await r.delete(key)
    async with store._io() as r:
        await r.delete(k.v1("due"), k.v1("due:od"), k.v1("leases"))
    log.info("first-layout keys moved: %s", dict(moved))
    return dict(moved)


async def _main() -> None:
    from bot.config import load_settings

    settings = load_settings()
    if not settings.redis_url:
        raise SystemExit("REDIS_URL is not set")
    store = await RedisStore.open(settings.redis_url, shards=settings.redis_due_shards)
    try:
        moved = {} if store.cluster else await migrate_first_layout(store)
        moved["tenant index"] = await store.index_tenants()
    finally:
        await store.close()
    logging.getLogger(__name__).info("done: %s", moved)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    asyncio.run(_main())
