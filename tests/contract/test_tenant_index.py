"""Contract: the connections of one Teams tenant, listed without reading the others' (every backend),
also on data written before the tenant index existed."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.storage.base import Store
from bot.storage.redis import RedisStore
from tests.contract.backends import Backend
from tests.contract.records import make_connection


async def _fill(store: Store) -> None:
    # Created out of order, so the listing's order is the creation time's, not the insertion's.
    await store.create_connection(make_connection("a2", "conv-a", minutes=2))
    await store.create_connection(make_connection("a1", "conv-a", minutes=1))
    other_tenant = make_connection("b1", "conv-b").model_copy(update={"teams_tenant_id": "tenant-2"})
    await store.create_connection(other_tenant)
    await store.create_connection(make_connection("a3", "conv-c", minutes=3))
    await store.create_connection(make_connection("a0", "conv-c", minutes=1))  # same time as a1: by id


OLD_CONNECTIONS = """
DROP INDEX connections_by_tenant;
DROP INDEX connections_by_conversation;
ALTER TABLE connections RENAME TO newer;
CREATE TABLE connections (
    id TEXT PRIMARY KEY, conversation_key TEXT NOT NULL, created_us INTEGER NOT NULL,
    version INTEGER NOT NULL, data TEXT NOT NULL);
CREATE INDEX connections_by_conversation ON connections (conversation_key, created_us);
INSERT INTO connections SELECT id, conversation_key, created_us, version, data FROM newer;
DROP TABLE newer;
"""


async def _forget_index(backend: Backend, *tenants: str) -> None:
    """As a deployment of the version before left it: no tenant index, no mark."""
    store = await backend.open()
    assert isinstance(store, RedisStore)
    async with store._io() as r:
        for key in [store.keys.tenants_indexed()] + [store.keys.tenant(t) for t in tenants]:
            await r.delete(key)
    await store.close()


async def _ids(store: Store, tenant: str) -> list[str]:
    return [c.id for c in await store.list_tenant_connections(tenant)]


async def test_lists_the_tenants_connections_in_creation_order(store: Store) -> None:
    await _fill(store)
    assert await _ids(store, "tenant-1") == ["a0", "a1", "a2", "a3"]
    assert await _ids(store, "tenant-2") == ["b1"]
    assert await _ids(store, "tenant-3") == []
    everyone = [c for c in await store.list_connections() if c.teams_tenant_id == "tenant-1"]
    assert await store.list_tenant_connections("tenant-1") == everyone


async def test_after_saves_and_deletes(store: Store) -> None:
    await _fill(store)
    a1 = await store.get_connection("a1")
    assert a1 is not None
    saved = await store.save_connection(a1.model_copy(update={"name": "renamed"}))
    moved = await store.save_connection(saved.model_copy(update={"conversation_key": "conv-z"}))
    listed = await store.list_tenant_connections("tenant-1")
    assert [c.id for c in listed] == ["a0", "a1", "a2", "a3"]
    assert listed[1] == moved
    await store.delete_connection("a2")
    await store.delete_connection("b1")
    assert await _ids(store, "tenant-1") == ["a0", "a1", "a3"]
    assert await _ids(store, "tenant-2") == []
    await store.create_connection(make_connection("a9", "conv-a", minutes=9))
    assert await _ids(store, "tenant-1") == ["a0", "a1", "a3", "a9"]


async def test_data_written_before_the_index_is_listed(backend: Backend) -> None:
    store = await backend.open()
    await _fill(store)
    await store.close()
    if backend.name == "sqlite":
        assert backend.path is not None
        with sqlite3.connect(backend.path) as db:  # the table as the version before made it
            db.executescript(OLD_CONNECTIONS)
    else:
        await _forget_index(backend, "tenant-1", "tenant-2")
    reopened = await backend.open()
    if backend.name == "sqlite":
        assert backend.path is not None
        with sqlite3.connect(backend.path) as db:  # filled at open
            rows = db.execute("SELECT id, teams_tenant_id FROM connections ORDER BY id").fetchall()
        assert rows == [
            ("a0", "tenant-1"),
            ("a1", "tenant-1"),
            ("a2", "tenant-1"),
            ("a3", "tenant-1"),
            ("b1", "tenant-2"),
        ]
    assert await _ids(reopened, "tenant-1") == ["a0", "a1", "a2", "a3"]
    assert await _ids(reopened, "tenant-2") == ["b1"]
    # Twice, and from another process at once: the same.
    again = await backend.open()
    assert await _ids(again, "tenant-1") == ["a0", "a1", "a2", "a3"]
    await reopened.delete_connection("a1")
    assert await _ids(again, "tenant-1") == ["a0", "a2", "a3"]


async def test_sqlite_rows_of_an_older_process_are_listed_before_the_next_open(backend: Backend) -> None:
    """A process of the version before, still running, writes rows without the column."""
    if backend.name != "sqlite":
        return
    store = await backend.open()
    await _fill(store)
    assert backend.path is not None
    with sqlite3.connect(backend.path) as db:
        db.execute("UPDATE connections SET teams_tenant_id = NULL WHERE id IN ('a1', 'b1')")
    assert await _ids(store, "tenant-1") == ["a0", "a1", "a2", "a3"]
    assert await _ids(store, "tenant-2") == ["b1"]


async def test_redis_index_is_filled_once_concurrently(backend: Backend) -> None:
    if backend.name == "sqlite":
        return
    first = await backend.open()
    await _fill(first)
    await _forget_index(backend, "tenant-1")
    second = await backend.open()
    assert isinstance(first, RedisStore)
    assert isinstance(second, RedisStore)
    assert await asyncio.gather(first.index_tenants(), second.index_tenants()) == [5, 5]
    assert await first.index_tenants() == 0  # marked done
    assert await _ids(second, "tenant-1") == ["a0", "a1", "a2", "a3"]
