"""The scheduler on the SQLite store: due times, jitter, leases, joins, allowance, pause, shutdown.

The runner here is a scripted stand-in for `SyncEngine.run` (the scheduler's `Runner` protocol): it
saves RUNNING and finished run records like the engine does and can be held open with an event, so the
tests control exactly when a run is under way. Engine behaviour itself is tested in tests/integration.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage.base import Connection, ConnectionStatus, RunOutcome, RunRecord
from bot.storage.sqlite import SqliteStore
from bot.sync.plans import get_plan
from bot.sync.scheduler import Refusal, Scheduler
from bot.teams.refusals import refusal_sentence


class ScriptedRunner:
    def __init__(self, store: SqliteStore, seconds: float = 0.0) -> None:
        self.store = store
        self.seconds = seconds
        self.gate: asyncio.Event | None = None
        self.calls: list[tuple[str, str, str, datetime | None]] = []
        self.active: set[str] = set()
        self.overlaps = 0
        self.cancelled = 0

    async def run(
        self,
        connection_id: str,
        trigger: str,
        *,
        run_id: str | None = None,
        next_run_at: datetime | None = None,
    ) -> RunRecord:
        assert run_id
        if connection_id in self.active:
            self.overlaps += 1
        self.active.add(connection_id)
        record = RunRecord(
            id=run_id, connection_id=connection_id, trigger=trigger, started_at=datetime.now(UTC)
        )
        await self.store.save_run(record)
        self.calls.append((connection_id, trigger, run_id, next_run_at))
        try:
            await asyncio.sleep(self.seconds)
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active.discard(connection_id)
        done = record.model_copy(update={"outcome": RunOutcome.SUCCEEDED, "finished_at": datetime.now(UTC)})
        await self.store.save_run(done)
        return done


def connection(cid: str, **extra: object) -> Connection:
    fields: dict[str, object] = {
        "id": cid,
        "name": f"Org {cid}",
        "teams_tenant_id": "t",
        "conversation_key": "msteams:c1",
        "created_by_aad_id": "u1",
        "xero_tenant_id": f"xt-{cid}",
        "plan": "premium",
        # Not due yet, so `start()` (which schedules active connections missing from the due set)
        # does not run it by itself.
        "next_run_at": datetime.now(UTC) + timedelta(hours=1),
    }
    fields.update(extra)
    return Connection.model_validate(fields)


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await SqliteStore.open(tmp_path / "s.db")
    yield s
    await s.close()


def make(store: SqliteStore, runner: ScriptedRunner, owner: str = "w1", **kw: object) -> Scheduler:
    options: dict[str, object] = {"poll_seconds": 0.05, "lease_seconds": 5.0, "rng": random.Random(7)}
    options.update(kw)
    return Scheduler(store, runner, owner=owner, **options)  # type: ignore[arg-type]


async def test_first_run_starts_within_a_poll_and_is_rescheduled_with_jitter(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    runner = ScriptedRunner(store)
    scheduler = make(store, runner, jitter=0.1)
    await scheduler.start()
    try:
        before = datetime.now(UTC)
        await scheduler.schedule_first_run("c1")
        await eventually(lambda: _released(store, "c1"))
    finally:
        await scheduler.stop(grace_seconds=1)
    assert [(c, t) for c, t, _, _ in runner.calls] == [("c1", "setup")]
    due = await store.get_due("c1")
    assert due is not None
    interval = get_plan("premium").interval
    assert before + interval <= due <= datetime.now(UTC) + interval * 1.1
    assert runner.calls[0][3] == due  # the engine was told the same next run


async def _released(store: SqliteStore, cid: str) -> bool:
    return await store.lease_holder(cid) is None and await store.get_due(cid) is not None


async def test_next_due_spreads_within_the_jitter(store: SqliteStore) -> None:
    scheduler = make(store, ScriptedRunner(store), jitter=0.2)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    conn = connection("c1", plan="standard")
    dues = [scheduler.next_due(conn, now) for _ in range(200)]
    interval = timedelta(minutes=10)
    assert all(now + interval <= d <= now + interval * 1.2 for d in dues)
    assert len({d for d in dues}) > 150
    spread = max(dues) - min(dues)
    assert spread > interval * 0.15
    # No jitter: exactly the plan's interval.
    exact = make(store, ScriptedRunner(store), jitter=0.0)
    assert exact.next_due(conn, now) == now + interval


async def test_on_demand_joins_the_run_under_way(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()
    scheduler = make(store, runner)
    await scheduler.start()
    try:
        first = await scheduler.request_run("c1", requested_by="u1")
        assert first.started
        assert not first.joined
        assert first.run_id
        assert first.used_today == 1
        second = await scheduler.request_run("c1", requested_by="u2")
        assert second.joined
        assert not second.started
        assert second.run_id == first.run_id
        assert second.started_at == first.started_at
        running = await scheduler.find_running("c1")
        assert running is not None
        assert running.id == first.run_id
        runner.gate.set()
        await eventually(lambda: _released(store, "c1"))
    finally:
        await scheduler.stop(grace_seconds=1)
    assert len(runner.calls) == 1
    assert runner.calls[0][1] == "setup"  # the connection never ran before


async def test_daily_allowance_of_on_demand_runs(store: SqliteStore) -> None:
    await store.create_connection(connection("c1", plan="trial", last_run_at=datetime.now(UTC)))
    runner = ScriptedRunner(store)
    scheduler = make(store, runner)
    await scheduler.start()
    allowance = get_plan("trial").on_demand_per_day
    try:
        for n in range(1, allowance + 1):
            answer = await scheduler.request_run("c1")
            assert answer.started, answer
            assert (answer.used_today, answer.allowance) == (n, allowance)
            await eventually(lambda: _released(store, "c1"))
        refused = await scheduler.request_run("c1")
    finally:
        await scheduler.stop(grace_seconds=1)
    assert not refused.started
    assert refused.refused_reason == Refusal.DAILY_ALLOWANCE
    saved_connection = await store.get_connection("c1")
    assert saved_connection is not None
    assert "5 on-demand syncs a day" in refusal_sentence(refused, saved_connection)
    assert len(runner.calls) == allowance
    assert {t for _, t, _, _ in runner.calls} == {"on_demand"}
    saved = await store.get_connection("c1")
    assert saved is not None
    assert saved.on_demand_runs_today == allowance


async def test_paused_connections_are_refused_and_not_rescheduled(store: SqliteStore) -> None:
    await store.create_connection(connection("paused", status=ConnectionStatus.PAUSED))
    await store.create_connection(connection("c1"))
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()
    scheduler = make(store, runner)
    await scheduler.start()
    try:
        refused = await scheduler.request_run("paused")
        assert refused.refused_reason == Refusal.PAUSED
        assert not refused.started
        assert (await scheduler.request_run("nope")).refused_reason == Refusal.NOT_FOUND
        started = await scheduler.request_run("c1")
        assert started.started
        # Paused while the run goes: it finishes, and is not scheduled again.
        current = await store.get_connection("c1")
        assert current is not None
        await store.save_connection(current.model_copy(update={"status": ConnectionStatus.PAUSED}))
        await store.unschedule("c1")
        runner.gate.set()
        await eventually(lambda: _no_lease(store, "c1"))
    finally:
        await scheduler.stop(grace_seconds=1)
    assert await store.get_due("c1") is None
    assert await store.get_due("paused") is None
    assert [c for c, _, _, _ in runner.calls] == ["c1"]


async def _no_lease(store: SqliteStore, cid: str) -> bool:
    return await store.lease_holder(cid) is None


async def test_two_schedulers_run_each_due_connection_exactly_once(tmp_path: Path) -> None:
    a_store = await SqliteStore.open(tmp_path / "shared.db")
    b_store = await SqliteStore.open(tmp_path / "shared.db")
    ids = [f"c{i}" for i in range(8)]
    now = datetime.now(UTC)
    for cid in ids:
        await a_store.create_connection(connection(cid))
        await a_store.schedule(cid, now)
    runner = ScriptedRunner(a_store, seconds=0.05)
    a = make(a_store, runner, owner="a", concurrency=2)
    b = make(b_store, runner, owner="b", concurrency=2)
    await a.start()
    await b.start()
    try:
        await eventually(lambda: _all_released(a_store, ids))
    finally:
        await a.stop(grace_seconds=1)
        await b.stop(grace_seconds=1)
        await b_store.close()
        await a_store.close()
    assert sorted(c for c, _, _, _ in runner.calls) == sorted(ids)
    assert runner.overlaps == 0


async def _all_released(store: SqliteStore, ids: list[str]) -> bool:
    return all([await _released(store, cid) for cid in ids])


async def test_a_crashed_workers_lease_expires_and_another_runs_it(store: SqliteStore) -> None:
    await store.create_connection(connection("c1", last_run_at=datetime.now(UTC)))
    now = datetime.now(UTC)
    await store.schedule("c1", now)
    # A worker claimed it and died without releasing.
    assert len(await store.claim_due(now, "dead-worker", 0.4, 10)) == 1
    runner = ScriptedRunner(store)
    scheduler = make(store, runner, owner="alive")
    await scheduler.start()
    try:
        await asyncio.sleep(0.2)
        assert runner.calls == []  # still leased by the dead worker
        await eventually(lambda: _has_calls(runner), timeout=3)
        await eventually(lambda: _released(store, "c1"), timeout=3)
    finally:
        await scheduler.stop(grace_seconds=1)
    assert [(c, t) for c, t, _, _ in runner.calls] == [("c1", "schedule")]


async def test_stop_cancels_runs_after_the_grace_and_leaves_them_due(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()  # never set: the run would go on forever
    scheduler = make(store, runner)
    await scheduler.start()
    await scheduler.schedule_first_run("c1")
    await eventually(lambda: _has_calls(runner))
    await scheduler.stop(grace_seconds=0.2)
    assert runner.cancelled == 1
    assert await store.lease_holder("c1") is None
    due = await store.get_due("c1")
    assert due is not None
    assert due <= datetime.now(UTC)


async def _has_calls(runner: ScriptedRunner) -> bool:
    return bool(runner.calls)


async def test_stop_lets_a_short_run_finish(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    runner = ScriptedRunner(store, seconds=0.2)
    scheduler = make(store, runner)
    await scheduler.start()
    await scheduler.schedule_first_run("c1")
    await eventually(lambda: _has_calls(runner))
    await scheduler.stop(grace_seconds=5)
    assert runner.cancelled == 0
    runs = await store.list_runs("c1")
    assert runs[0].outcome == RunOutcome.SUCCEEDED
    due = await store.get_due("c1")
    assert due is not None
    assert due > datetime.now(UTC) + timedelta(minutes=4)


async def test_a_lost_lease_cancels_the_run(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    runner = ScriptedRunner(store)
    runner.gate = asyncio.Event()
    scheduler = make(store, runner, lease_seconds=0.6)
    await scheduler.start()
    try:
        await scheduler.schedule_first_run("c1")
        await eventually(lambda: _has_calls(runner))
        # Another worker took the connection over (as after a long pause of this process).
        with sqlite3.connect(store.path) as db:
            db.execute("UPDATE schedule SET owner = 'thief' WHERE connection_id = 'c1'")
        await eventually(lambda: _cancelled(runner), timeout=3)
    finally:
        await scheduler.stop(grace_seconds=1)
    assert await store.lease_holder("c1") == "thief"


async def _cancelled(runner: ScriptedRunner) -> bool:
    return runner.cancelled == 1


async def test_request_from_a_process_without_a_loop_is_run_by_a_worker(tmp_path: Path) -> None:
    worker_store = await SqliteStore.open(tmp_path / "shared.db")
    bot_store = await SqliteStore.open(tmp_path / "shared.db")
    await worker_store.create_connection(connection("c1", last_run_at=datetime.now(UTC)))
    runner = ScriptedRunner(worker_store)
    runner.gate = asyncio.Event()
    worker = make(worker_store, runner, owner="worker")
    bot_side = make(bot_store, ScriptedRunner(bot_store), owner="bot")  # never started
    await worker.start()
    try:
        answer = await bot_side.request_run("c1")
        assert answer.started
        assert answer.run_id == runner.calls[0][2]
        joined = await bot_side.request_run("c1")
        assert joined.joined
        assert joined.run_id == answer.run_id
        running = await bot_side.find_running("c1")
        assert running is not None
        assert running.id == answer.run_id
        runner.gate.set()
        await eventually(lambda: _released(worker_store, "c1"))
        assert await bot_side.find_running("c1") is None
    finally:
        await worker.stop(grace_seconds=1)
        await bot_store.close()
        await worker_store.close()
    assert [(c, t) for c, t, _, _ in runner.calls] == [("c1", "on_demand")]


async def test_with_no_worker_an_on_demand_run_is_queued(store: SqliteStore) -> None:
    await store.create_connection(connection("c1"))
    idle = make(store, ScriptedRunner(store), start_wait_seconds=0.2)
    answer = await idle.request_run("c1")
    assert answer.queued
    assert not answer.started
    assert not answer.refused_reason
    assert await store.get_due("c1") is not None
