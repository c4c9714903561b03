"""Contract: locks, eTag documents, expiring counters."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import ConcurrencyError
from bot.storage.base import Store
from tests.contract.backends import Backend


async def test_lock_is_exclusive_and_owned(store: Store) -> None:
    assert await store.acquire_lock("refresh:c1", "w1", 30)
    assert not await store.acquire_lock("refresh:c1", "w2", 30)
    assert await store.acquire_lock("refresh:c2", "w2", 30)  # other names are independent
    await store.release_lock("refresh:c1", "w2")  # not the owner: no effect
    assert not await store.acquire_lock("refresh:c1", "w2", 30)
    assert await store.acquire_lock("refresh:c1", "w1", 30)  # the owner may refresh it
    await store.release_lock("refresh:c1", "w1")
    assert await store.acquire_lock("refresh:c1", "w2", 30)


async def test_lock_expires(store: Store) -> None:
    assert await store.acquire_lock("refresh:c1", "w1", 0.2)
    assert not await store.acquire_lock("refresh:c1", "w2", 30)
    await asyncio.sleep(0.3)
    assert await store.acquire_lock("refresh:c1", "w2", 30)
    await store.release_lock("refresh:c1", "w1")  # the expired owner cannot release the new holder's lock
    assert not await store.acquire_lock("refresh:c1", "w3", 30)


async def test_lock_taken_once_under_concurrency(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    results = await asyncio.gather(*[stores[i % 2].acquire_lock("L", f"w{i}", 30) for i in range(20)])
    assert results.count(True) == 1


async def test_documents_with_etags(store: Store) -> None:
    assert await store.read_documents(["a", "b"]) == {}
    assert await store.read_documents([]) == {}
    etag1 = await store.write_document("a", {"dialog": ["step", 1], "nested": {"x": None}}, None)
    docs = await store.read_documents(["a", "b"])
    assert set(docs) == {"a"}
    assert docs["a"].value == {"dialog": ["step", 1], "nested": {"x": None}}
    assert docs["a"].etag == etag1
    etag2 = await store.write_document("a", {"v": 2}, etag1)
    assert etag2 != etag1
    with pytest.raises(ConcurrencyError):
        await store.write_document("a", {"v": "stale"}, etag1)
    assert (await store.read_documents(["a"]))["a"].value == {"v": 2}
    etag3 = await store.write_document("a", {"v": 3}, "*")
    assert etag3 not in (etag1, etag2)
    with pytest.raises(ConcurrencyError):
        await store.write_document("missing", {"v": 1}, "some-etag")
    await store.write_document("b", {"v": "b"}, None)
    await store.delete_documents(["a", "never"])
    assert set(await store.read_documents(["a", "b"])) == {"b"}
    await store.delete_documents([])


async def test_document_conflict_under_concurrency(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    etag = await stores[0].write_document("d", {"n": 0}, None)
    results = await asyncio.gather(
        *[stores[i % 2].write_document("d", {"n": i}, etag) for i in range(10)], return_exceptions=True
    )
    assert len([r for r in results if isinstance(r, str)]) == 1
    assert all(isinstance(r, ConcurrencyError) for r in results if not isinstance(r, str))


async def test_counters_count_and_expire(store: Store) -> None:
    assert [await store.incr_counter("on_demand:c1", 60) for _ in range(3)] == [1, 2, 3]
    assert await store.incr_counter("on_demand:c2", 60) == 1
    assert await store.incr_counter("short", 0.4) == 1
    await asyncio.sleep(0.25)
    assert await store.incr_counter("short", 0.4) == 2
    await asyncio.sleep(0.25)
    # Expires 0.4 s after its creation: the second increment did not push the expiry back.
    assert await store.incr_counter("short", 0.4) == 1
    assert await store.incr_counter("on_demand:c1", 60) == 4


async def test_counter_under_concurrency(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    results = await asyncio.gather(*[stores[i % 2].incr_counter("n", 60) for i in range(20)])
    assert sorted(results) == list(range(1, 21))
