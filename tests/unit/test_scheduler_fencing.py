"""One connection never runs twice at once, from this process's side: a claim the store hands back for
a run still going here is not started a second time (and its due time is kept), and a run stops when
its lease ends even if the store never answers the extension.

The real Scheduler on a real SQLite store; the runner is the scripted one of tests/unit/test_scheduler.py.
The store outage seen end to end is tests/security/test_lease_fencing.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.errors import StoreError
from bot.storage.base import RunRecord
from bot.storage.sqlite import SqliteStore
from tests.unit.test_scheduler import ScriptedRunner, connection, eventually, make

LEASE = 0.6


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "s.db")
    yield s
    await s.close()


class StuckExtensions:
    """The store, except that `extend_lease` never answers (a dead connection the client waits on)."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.extensions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def extend_lease(self, connection_id: str, owner: str, lease_seconds: float) -> bool:
        self.extensions += 1
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class StoreErrorOnCancel(ScriptedRunner):
    """Like the engine when the store is away: saving the interrupted run fails, so a cancelled run
    ends with a StoreError instead of CancelledError."""

    async def run(self, connection_id: str, trigger: str, *, run_id: str | None = None,
                  next_run_at: datetime | None = None) -> RunRecord:  # fmt: skip
        try:
            return await super().run(connection_id, trigger, run_id=run_id, next_run_at=next_run_at)
        except asyncio.CancelledError:
            raise StoreError("could not save the interrupted run") from None


def expire_lease(store: SqliteStore, connection_id: str) -> None:
    """The store's lease runs out while the run goes on here (the store was away, or this process
    stalled): the entry is claimable again, and the claimer may be this same worker."""
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE schedule SET lease_until_us = 1 WHERE connection_id = ?", (connection_id,))


async def test_a_claim_handed_back_for_a_run_still_going_here_is_not_started_twice(
    store: SqliteStore,
) -> None:
    await store.create_connection(connection("c1", last_run_at=datetime.now(UTC)))
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()
    scheduler = make(store, runner, lease_seconds=5.0)
    await scheduler.start()
    try:
        await scheduler.schedule_first_run("c1")
        await eventually(lambda: _calls(runner, 1))
        first = runner.calls[0][2]
        expire_lease(store, "c1")

        async def reclaimed() -> bool:
            return await store.lease_holder("c1") == "w1"

        await eventually(reclaimed)  # the loop claimed it again, under the same owner
        await asyncio.sleep(0.3)  # several more polls: time enough for a wrong second start
        assert [c[2] for c in runner.calls] == [first], "one connection started twice in one process"
        assert runner.cancelled == 0  # the run under way keeps the lease (ours by name) and goes on
        running = await scheduler.find_running("c1")
        assert running is not None
        assert running.id == first
        runner.gate.set()
        # The due time the store handed back is kept: the connection runs again, after the first run.
        await eventually(lambda: _calls(runner, 2))
    finally:
        await scheduler.stop(grace_seconds=1)
    assert runner.overlaps == 0


async def test_a_run_stops_when_its_lease_ends_even_if_the_extension_never_answers(
    store: SqliteStore,
) -> None:
    await store.create_connection(connection("c1", last_run_at=datetime.now(UTC)))
    stuck = StuckExtensions(store)
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()
    scheduler = make(stuck, runner, lease_seconds=LEASE)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    await scheduler.start()
    try:
        await scheduler.schedule_first_run("c1")
        await eventually(lambda: _calls(runner, 1))
        started = loop.time()
        await eventually(lambda: _cancelled(runner, 1), timeout=3)
        assert loop.time() - started <= LEASE + 0.4, "the run went on after its lease ended"
        assert stuck.extensions >= 1
    finally:
        await scheduler.stop(grace_seconds=1)
    assert runner.overlaps == 0


async def test_a_cancelled_run_that_ends_with_a_store_error_is_due_again_at_once(store: SqliteStore) -> None:
    """A cancelled run (here at shutdown) may end with the engine's StoreError rather than
    CancelledError: it was interrupted all the same, so it is due again now, not an interval later."""
    await store.create_connection(connection("c1", last_run_at=datetime.now(UTC)))
    runner = StoreErrorOnCancel(store)
    runner.gate = asyncio.Event()
    scheduler = make(store, runner)
    await scheduler.start()
    try:
        await scheduler.schedule_first_run("c1")
        await eventually(lambda: _calls(runner, 1))
    finally:
        await scheduler.stop(grace_seconds=0.1)
    assert runner.cancelled == 1
    due = await store.get_due("c1")
    assert due is not None
    assert due <= datetime.now(UTC)
    assert await store.lease_holder("c1") is None


async def _calls(runner: ScriptedRunner, count: int) -> bool:
    return len(runner.calls) >= count


async def _cancelled(runner: ScriptedRunner, count: int) -> bool:
    return runner.cancelled >= count
