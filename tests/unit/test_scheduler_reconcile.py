"""The scheduler's reconcile: connections missing from the due set are scheduled again, by one worker at a time.

Shares the scripted runner and the store fixture of test_scheduler.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage.base import Connection, ConnectionStatus
from bot.storage.sqlite import SqliteStore
from tests.unit.test_scheduler import ScriptedRunner, connection, eventually, make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.sqlite3")
    try:
        yield opened
    finally:
        await opened.close()


async def test_reconcile_schedules_active_connections_missing_from_the_due_set(store: SqliteStore) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=2)
    await store.create_connection(connection("lost", next_run_at=soon))
    await store.create_connection(connection("new"))
    await store.create_connection(connection("paused", status=ConnectionStatus.PAUSED))
    await store.create_connection(connection("kept"))
    kept_due = datetime.now(UTC) + timedelta(minutes=3)
    await store.schedule("kept", kept_due)
    scheduler = make(store, ScriptedRunner(store))
    assert await scheduler.reconcile() == 2
    assert await store.get_due("lost") == soon
    assert await store.get_due("new") is not None
    assert await store.get_due("paused") is None
    assert await store.get_due("kept") == kept_due


class _CountingListings:
    """The store, counting `list_connections` (what a reconcile costs: every connection, loaded)."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.listed = 0

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        self.listed += 1
        return await self._inner.list_connections(conversation_key)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


async def test_only_the_holder_of_the_reconcile_lock_reads_every_connection(store: SqliteStore) -> None:
    await store.create_connection(connection("lost", next_run_at=None))
    counting = [_CountingListings(store) for _ in range(3)]
    schedulers = [
        make(c, ScriptedRunner(store), owner=f"w{i}")  # type: ignore[arg-type]
        for i, c in enumerate(counting)
    ]
    for scheduler in schedulers:
        await scheduler.start()
    try:
        await eventually(lambda: _has_due(store, "lost"))
        await asyncio.sleep(0.3)  # several polls each
    finally:
        for scheduler in schedulers:
            await scheduler.stop(grace_seconds=1)
    # The connection missing from the due set was scheduled, by one of them; the idle ones read nothing.
    assert sorted(c.listed for c in counting) == [0, 0, 1]


async def _has_due(store: SqliteStore, cid: str) -> bool:
    return await store.get_due(cid) is not None or await store.lease_holder(cid) is not None
