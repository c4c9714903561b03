"""`bot.sync.locks.ConnectionLock`, the one per-connection lock of the Xero and Dynamics token keepers."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import StoreError, TransientProviderError
from bot.storage.sqlite import SqliteStore
from bot.sync.locks import ConnectionLock


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


def lock(store: SqliteStore, **kw: float) -> ConnectionLock:
    return ConnectionLock(store, "test:", provider="xero", **kw)


async def test_holders_in_one_process_take_turns_in_order(store: SqliteStore) -> None:
    keeper = lock(store)
    order: list[str] = []

    async def hold(name: str) -> None:
        async with keeper.hold("c1"):
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")

    await asyncio.gather(hold("a"), hold("b"), hold("c"))
    assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]


async def test_another_process_waits_for_the_store_lock_then_gives_up(store: SqliteStore) -> None:
    ours = lock(store)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    theirs = ConnectionLock(
        store, "test:", provider="dynamics", wait=0.1, sleep=sleep
    )
    async with ours.hold("c1"):
        with pytest.raises(TransientProviderError) as raised:
            async with theirs.hold("c1"):
                pytest.fail("the lock is held by another owner")
    assert raised.value.provider == "dynamics"
    assert raised.value.code == "token_lock_busy"
    assert waits[:3] == [0.02, 0.04, 0.08]  # doubling, through the injected sleep
    async with theirs.hold("c1"):
        assert await store.acquire_lock(theirs.name("c1"), ours.owner, 60) is False


class _ReleaseFails(SqliteStore):
    failed = 0

    async def release_lock(self, name: str, owner: str) -> None:
        type(self).failed += 1
        raise StoreError("the store went away")


async def test_a_failed_release_does_not_replace_the_result(tmp_path: Path) -> None:
    broken = await _ReleaseFails.open(tmp_path / "store.db")
    try:
        keeper = lock(broken, ttl=0.05)
        async with keeper.hold("c1"):
            result = "token stored"
        assert result == "token stored"
        assert _ReleaseFails.failed == 1
        await asyncio.sleep(0.06)  # the TTL frees it for others
        assert await broken.acquire_lock(keeper.name("c1"), "someone else", 60)
    finally:
        await broken.close()


async def test_in_process_locks_are_not_kept_for_every_connection_ever_seen(store: SqliteStore) -> None:
    keeper = lock(store)
    for n in range(50):
        async with keeper.hold(f"c{n}"):
            pass
    gc.collect()
    assert len(keeper._local) == 0
