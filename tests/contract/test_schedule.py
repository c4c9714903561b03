"""Contract: the due set with leases (claimed exactly once, across store objects as across processes)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.storage.base import Store, utcnow
from tests.contract.backends import Backend

LEASE = 30.0


async def test_claim_returns_due_only_and_marks_lease(store: Store) -> None:
    now = utcnow()
    await store.schedule("past", now - timedelta(minutes=5))
    await store.schedule("exactly-now", now)
    await store.schedule("future", now + timedelta(minutes=5))
    claims = await store.claim_due(now, "w1", LEASE, limit=10)
    assert [c.connection_id for c in claims] == ["past", "exactly-now"]
    first = claims[0]
    assert first.owner == "w1"
    assert first.due_at == now - timedelta(minutes=5)
    assert not first.on_demand
    assert now + timedelta(seconds=LEASE - 5) < first.lease_until < utcnow() + timedelta(seconds=LEASE + 5)
    assert await store.lease_holder("past") == "w1"
    assert await store.lease_holder("future") is None
    assert await store.claim_due(now, "w2", LEASE, limit=10) == []
    assert [c.connection_id for c in await store.claim_due(now + timedelta(minutes=6), "w2", LEASE, 10)] == [
        "future"
    ]


async def test_claim_respects_limit_and_due_order(store: Store) -> None:
    now = utcnow()
    for i, minutes in enumerate([3, 1, 2]):
        await store.schedule(f"c{i}", now - timedelta(minutes=minutes))
    first = await store.claim_due(now, "w1", LEASE, limit=2)
    assert [c.connection_id for c in first] == ["c0", "c2"]
    assert [c.connection_id for c in await store.claim_due(now, "w1", LEASE, limit=2)] == ["c1"]
    assert await store.claim_due(now, "w1", LEASE, limit=0) == []


async def test_on_demand_first(store: Store) -> None:
    now = utcnow()
    await store.schedule("regular", now - timedelta(minutes=10))
    await store.schedule("asked", now - timedelta(seconds=1), on_demand=True)
    claims = await store.claim_due(now, "w1", LEASE, limit=1)
    assert [(c.connection_id, c.on_demand) for c in claims] == [("asked", True)]
    assert [c.connection_id for c in await store.claim_due(now, "w1", LEASE, limit=1)] == ["regular"]


async def test_schedule_moves_and_on_demand_is_kept(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now + timedelta(hours=1))
    await store.schedule("c1", now + timedelta(hours=2))
    assert await store.get_due("c1") == now + timedelta(hours=2)
    await store.schedule("c1", now - timedelta(minutes=1))
    assert await store.get_due("c1") == now - timedelta(minutes=1)
    # An on-demand request does not delay an entry that is already earlier...
    await store.schedule("c1", now, on_demand=True)
    assert await store.get_due("c1") == now - timedelta(minutes=1)
    # ...and is not lost when the regular schedule is moved afterwards.
    await store.schedule("c1", now + timedelta(hours=3))
    claims = await store.claim_due(now, "w1", LEASE, limit=5)
    assert [(c.connection_id, c.on_demand, c.due_at) for c in claims] == [
        ("c1", True, now - timedelta(minutes=1))
    ]


async def test_unschedule(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now - timedelta(minutes=1))
    await store.unschedule("c1")
    assert await store.get_due("c1") is None
    assert await store.claim_due(now, "w1", LEASE, 5) == []
    await store.unschedule("never-scheduled")


async def test_exactly_once_under_twenty_concurrent_claimers(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    now = utcnow()
    await stores[0].schedule("only", now - timedelta(seconds=1))
    results = await asyncio.gather(
        *[stores[i % 2].claim_due(now, f"w{i}", LEASE, limit=1) for i in range(20)]
    )
    winners = [claim for claims in results for claim in claims]
    assert len(winners) == 1
    assert await stores[1].lease_holder("only") == winners[0].owner


async def test_many_entries_each_claimed_once(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    now = utcnow()
    ids = [f"c{i:02d}" for i in range(30)]
    for i, cid in enumerate(ids):
        await stores[i % 2].schedule(cid, now - timedelta(seconds=i), on_demand=i % 5 == 0)
    results = await asyncio.gather(
        *[stores[i % 2].claim_due(now, f"w{i}", LEASE, limit=3) for i in range(20)]
    )
    claimed = [claim.connection_id for claims in results for claim in claims]
    assert sorted(claimed) == ids  # every entry once, none twice
    for claims in results:
        for claim in claims:
            assert await stores[0].lease_holder(claim.connection_id) == claim.owner


async def test_expired_lease_is_claimable_again(backend: Backend) -> None:
    one, two = await backend.open(), await backend.open()
    now = utcnow()
    await one.schedule("c1", now - timedelta(seconds=5))
    [claim] = await one.claim_due(now, "w1", 0.2, limit=5)
    assert await two.claim_due(now, "w2", LEASE, limit=5) == []
    await asyncio.sleep(0.3)
    assert await one.lease_holder("c1") is None
    again = await two.claim_due(now, "w2", LEASE, limit=5)
    assert [(c.connection_id, c.owner, c.due_at) for c in again] == [("c1", "w2", claim.due_at)]
    # The first worker lost it: it can neither extend nor release it any more.
    assert not await one.extend_lease("c1", "w1", LEASE)
    assert not await one.release("c1", "w1", now + timedelta(hours=1))
    assert await two.lease_holder("c1") == "w2"


async def test_extend_and_release_check_ownership(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now - timedelta(seconds=1))
    [claim] = await store.claim_due(now, "w1", 0.3, limit=1)
    assert not await store.extend_lease("c1", "intruder", LEASE)
    assert await store.extend_lease("c1", "w1", LEASE)
    await asyncio.sleep(0.4)  # past the first lease: the extension holds it
    assert await store.lease_holder("c1") == "w1"
    assert await store.claim_due(now + timedelta(hours=9), "w2", LEASE, 5) == []
    assert not await store.release("c1", "intruder", None)
    assert await store.release("c1", "w1", now + timedelta(hours=1))
    assert await store.lease_holder("c1") is None
    assert await store.get_due("c1") == now + timedelta(hours=1)
    assert not await store.release("c1", "w1", None)  # already released
    assert not await store.extend_lease("unknown", "w1", LEASE)
    assert claim.connection_id == "c1"


async def test_release_without_next_due_leaves_it_unscheduled(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now)
    await store.claim_due(now, "w1", LEASE, 1)
    assert await store.release("c1", "w1", None)
    assert await store.get_due("c1") is None
    assert await store.claim_due(now + timedelta(days=1), "w1", LEASE, 1) == []


async def test_schedule_while_leased_keeps_the_lease(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now - timedelta(seconds=1))
    await store.claim_due(now, "w1", LEASE, 1)
    later = now + timedelta(hours=1)
    await store.schedule("c1", later)
    assert await store.lease_holder("c1") == "w1"
    assert await store.get_due("c1") == later
    assert await store.claim_due(now + timedelta(hours=2), "w2", LEASE, 5) == []
    assert await store.release("c1", "w1", None)
    assert await store.get_due("c1") == later
    [claim] = await store.claim_due(now + timedelta(hours=2), "w2", LEASE, 5)
    assert (claim.owner, claim.due_at) == ("w2", later)


async def test_on_demand_during_a_run_is_not_lost_at_release(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now - timedelta(seconds=1))
    await store.claim_due(now, "w1", LEASE, 1)
    await store.schedule("c1", now, on_demand=True)
    assert await store.release("c1", "w1", now + timedelta(hours=1))
    [claim] = await store.claim_due(now, "w1", LEASE, 5)
    assert claim.on_demand
    assert claim.due_at == now


async def test_unschedule_during_a_run_keeps_the_lease(store: Store) -> None:
    now = utcnow()
    await store.schedule("c1", now - timedelta(seconds=1))
    await store.claim_due(now, "w1", 0.2, 1)
    await store.unschedule("c1")
    assert await store.lease_holder("c1") == "w1"
    await asyncio.sleep(0.3)
    # Lease gone and nothing due: the stopped connection is not picked up again.
    assert await store.claim_due(now + timedelta(days=1), "w2", LEASE, 5) == []
    assert await store.get_due("c1") is None
