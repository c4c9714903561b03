"""SyncService, the facade the Teams layer calls: run now, pause, resume, next run, history, running."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.errors import NotFound
from bot.storage.base import ConnectionStatus
from bot.storage.sqlite import SqliteStore
from bot.sync.scheduler import Refusal
from bot.sync.service import SyncService
from tests.unit.test_scheduler import ScriptedRunner, connection, eventually, make


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "s.db")
    yield s
    await s.close()


async def test_run_now_pause_resume_and_what_the_chat_shows(store: SqliteStore) -> None:
    await store.create_connection(connection("c1", last_run_at=datetime.now(UTC)))
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()
    scheduler = make(store, runner)
    service = SyncService(store, scheduler)
    await scheduler.start()
    try:
        started = await service.run_now("c1", requested_by="aad-1")
        assert started.started
        running = await service.running("c1")
        assert running is not None
        assert running.id == started.run_id
        joined = await service.run_now("c1", requested_by="aad-2")
        assert joined.joined
        assert joined.run_id == started.run_id

        paused = await service.pause("c1", by="Alice")
        assert paused.status == ConnectionStatus.PAUSED
        assert paused.status_reason == "Paused by Alice"
        assert await service.next_run_at(paused) is None
        runner.gate.set()

        async def idle() -> bool:
            return await service.running("c1") is None

        await eventually(idle)
        refused = await service.run_now("c1", requested_by="aad-1")
        assert refused.refused_reason == Refusal.PAUSED
        assert await store.get_due("c1") is None  # the run that was going did not reschedule it

        resumed = await service.resume("c1", by="Alice")
        assert resumed.status == ConnectionStatus.ACTIVE
        due = await service.next_run_at(resumed)
        assert due is not None
        assert due <= datetime.now(UTC) + timedelta(seconds=1)

        async def ran_again() -> bool:
            return len(runner.calls) == 2

        await eventually(ran_again)
        history = await service.history("c1", 5)
        assert [r.id for r in history][-1] == started.run_id
        assert len(history) == 2
    finally:
        await scheduler.stop(grace_seconds=1)


async def test_pause_is_idempotent_and_resume_leaves_other_states_alone(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    await store.create_connection(connection("c2", status=ConnectionStatus.NEEDS_RECONNECTION))
    service = SyncService(store, make(store, ScriptedRunner(store)))
    first = await service.pause("c1", by="Alice", reason="Month end")
    again = await service.pause("c1", by="Bob")
    assert again.status_reason == "Month end"
    assert again.version == first.version  # already paused: nothing written
    still = await service.resume("c2", by="Alice")
    assert still.status == ConnectionStatus.NEEDS_RECONNECTION
    assert await store.get_due("c2") is None
    with pytest.raises(NotFound):
        await service.pause("missing", by="Alice")


async def test_first_run_is_due_at_once(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    service = SyncService(store, make(store, ScriptedRunner(store)))
    await service.schedule_first_run("c1")
    due = await store.get_due("c1")
    assert due is not None
    assert due <= datetime.now(UTC)
    conn = await store.get_connection("c1")
    assert conn is not None
    assert await service.next_run_at(conn) == due
