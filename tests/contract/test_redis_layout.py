"""The Redis store beyond the shared contract: the waiting pool, the cluster layout (hash slots and
due-set shards), the URL that picks a cluster, and the one-shot move from the first key layout."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import MaxConnectionsError

from bot.config import Settings
from bot.errors import StoreError
from bot.storage import RedisStore, open_store
from bot.storage.base import TokenKind, utcnow
from bot.storage.common import to_us
from bot.storage.redis_base import PoolSettings
from bot.storage.redis_keys import Keys
from bot.storage.redis_migrate import migrate_first_layout
from bot.storage.redis_scripts import SCRIPTS
from tests.contract.cluster import LocalCluster
from tests.contract.records import make_connection, make_run

pytestmark = pytest.mark.redis


async def _our_clients(ports: list[int]) -> list[int]:
    """Per node: connections open besides the one counting them."""
    counts = []
    for port in ports:
        admin = Redis(host="127.0.0.1", port=port)
        try:
            counts.append(len(await admin.client_list()) - 1)
        finally:
            await admin.aclose()
    return counts


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_300_concurrent_calls_on_a_pool_of_20(kind: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("redis_url" if kind == "redis" else "redis_cluster_url")
    ports = request.getfixturevalue("redis_cluster").ports if kind == "cluster" else [_port(url)]
    if kind == "redis":
        # The load is real: redis-py's own (non-blocking) pool of 20 fails under it.
        plain = Redis.from_url(url, max_connections=20)
        with pytest.raises(MaxConnectionsError):
            await asyncio.gather(*[plain.incr("plain") for _ in range(300)])
        await plain.aclose()
        await asyncio.sleep(0.1)
    before = await _our_clients(ports)
    store = await RedisStore.open(url, pool=PoolSettings(max_connections=20, timeout=30))
    try:
        counts = await asyncio.gather(*[store.incr_counter("n", 60) for _ in range(300)])
        assert sorted(counts) == list(range(1, 301))
        await store.create_connection(make_connection("c1"))
        got = await asyncio.gather(*[store.get_connection("c1") for _ in range(300)])
        assert all(c is not None and c.id == "c1" for c in got)
        opened = [n - b for n, b in zip(await _our_clients(ports), before, strict=True)]
        # A cluster client also keeps one connection for topology discovery (CLUSTER SLOTS) on a node.
        assert all(n <= 20 for n in opened) or (
            kind == "cluster" and sorted(opened)[-2] <= 20 <= max(opened) <= 21
        ), (
            before,
            opened,
        )
    finally:
        await store.close()


async def test_a_call_waits_for_a_connection_then_gives_up(redis_url: str) -> None:
    store = await RedisStore.open(redis_url, pool=PoolSettings(max_connections=1, timeout=0.3))
    admin = Redis.from_url(redis_url)
    try:
        await admin.client_pause(1500, all=True)
        slow = asyncio.create_task(store.incr_counter("n", 60))
        await asyncio.sleep(0.05)
        with pytest.raises(StoreError, match="REDIS_MAX_CONNECTIONS"):
            await store.incr_counter("n", 60)
        assert await slow == 1  # the call holding the only connection finishes once Redis answers
        assert await store.incr_counter("n", 60) == 2
    finally:
        await admin.aclose()
        await store.close()


async def test_due_shards_spread_over_the_three_nodes(redis_cluster: LocalCluster) -> None:
    client = RedisCluster(host="127.0.0.1", port=redis_cluster.ports[0])
    await client.initialize()
    try:
        keys = Keys("xdc:")
        nodes = {str(client.get_node_from_key(keys.queues(k)[0])) for k in range(keys.shards)}
        assert len(nodes) == 3
        for k in range(keys.shards):  # a shard's queues and entries share its slot
            assert len({key_slot(name.encode()) for name in keys.queues(k)}) == 1
    finally:
        await client.aclose()


def test_scripts_never_build_key_names() -> None:
    # No string concatenation at all: every key a script touches arrives in KEYS.
    for name, body in SCRIPTS.items():
        assert ".." not in body, name


async def test_cluster_url_and_pool_come_from_settings(redis_cluster_url: str, tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path,
        redis_url=redis_cluster_url,
        redis_max_connections=7,
        redis_pool_timeout_seconds=2.5,
    )
    store = await open_store(settings)
    try:
        assert isinstance(store, RedisStore)
        assert store.cluster
        assert store.pool == PoolSettings(7, 2.5)
        await store.create_connection(make_connection("c1"))
        assert [c.id for c in await store.list_connections()] == ["c1"]
    finally:
        await store.close()


async def test_first_layout_is_moved_once(redis_url: str) -> None:
    """Keys as the store wrote them before issue 18, then the move, then the store reads them all."""
    old = Redis.from_url(redis_url)
    now = utcnow()
    conn = make_connection("c1", "conv-a").model_copy(update={"version": 3})
    created = to_us(conn.created_at)
    fp_key = "xdc:fp:" + json.dumps(["c1", "accounts"])
    run = make_run("r1", "c1")
    await old.set("xdc:conn:c1", conn.model_dump_json())
    await old.zadd("xdc:conns:", {"c1": created})
    await old.zadd("xdc:conns:conv:conv-a", {"c1": created})
    await old.hset("xdc:tok:c1", "xero", b"blob")
    await old.set("xdc:run:r1", run.model_dump_json())
    await old.zadd("xdc:runs:c1", {"r1": to_us(run.started_at)})
    await old.hset(fp_key, mapping={"acct": "hash"})
    await old.sadd("xdc:fpi:c1", fp_key)
    due = to_us(now - timedelta(minutes=1))
    await old.hset("xdc:sched:c1", mapping={"due": str(due), "od": "1"})
    await old.zadd("xdc:due:od:", {"c1": due})
    far = to_us(now + timedelta(hours=1))
    await old.hset("xdc:sched:c2", mapping={"due": str(due), "od": "0", "owner": "w9", "until": str(far)})
    await old.zadd("xdc:leases:", {"c2": far})
    await old.aclose()

    store = await RedisStore.open(redis_url)
    try:
        moved = await migrate_first_layout(store)
        assert moved == {"conn": 1, "tok": 1, "runs": 1, "fp": 1, "sched": 2}
        assert await migrate_first_layout(store) == {}
        assert await store.get_connection("c1") == conn
        assert [c.id for c in await store.list_connections("conv-a")] == ["c1"]
        assert await store.get_tokens("c1", TokenKind.XERO) == b"blob"
        assert [r.id for r in await store.list_runs("c1")] == ["r1"]
        assert await store.get_fingerprints("c1", "accounts") == {"acct": "hash"}
        assert await store.lease_holder("c2") == "w9"
        [claim] = await store.claim_due(now, "w1", 30, 5)
        assert (claim.connection_id, claim.on_demand) == ("c1", True)
        await store.delete_connection("c1")
        assert [key for key, _ in await store.dump_all() if "c1" in key] == []
        names = [key for key, _ in await store.dump_all()]
        assert not [n for n in names if n.startswith(("xdc:sched:", "xdc:due:", "xdc:leases:", "xdc:fp"))]
        assert await store.get_due("c2") is None  # still leased, nothing pending
    finally:
        await store.close()


async def test_cluster_nodes_that_forgot_the_scripts_get_them_again(redis_cluster: LocalCluster) -> None:
    redis_cluster.flush()
    store = await RedisStore.open(redis_cluster.url)
    try:
        now = utcnow()
        for i in range(20):  # spread over the shards, so over every node
            await store.schedule(f"c{i}", now - timedelta(seconds=i))
        for port in redis_cluster.ports:  # as after a restart of every node (data kept)
            admin = Redis(host="127.0.0.1", port=port)
            await admin.script_flush()
            await admin.aclose()
        claims = await store.claim_due(now, "w1", 30, 50)
        assert sorted(c.connection_id for c in claims) == sorted(f"c{i}" for i in range(20))
        assert await store.release("c3", "w1", None)
    finally:
        await store.close()
