"""One connection never runs twice at once, even when the store goes away mid-run (a Redis restart):
a run whose lease could not be renewed must have stopped by the time that lease ends, because from then
on any worker may claim the connection again.

Deterministic and fast: the real Scheduler on a real SQLite store, with every store call failing for
a while (as when redis-server is down), and a runner that only records when it ran. The end-to-end
Redis restart with a worker process is tests/security/test_redis_restart.py.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.errors import StoreError
from bot.storage.base import Connection, RunOutcome, RunRecord
from bot.storage.sqlite import SqliteStore
from bot.sync.scheduler import Scheduler

LEASE = 0.6


class FlakyStore:
    """The store, except that while `down` every call fails as it does when Redis is unreachable."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise StoreError("the store is unreachable")
            return await target(*args, **kwargs)

        return call


class RecordingRunner:
    """Runs take `seconds` unless cancelled; every run's (start, end, cancelled) is kept."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.spans: list[tuple[float, float | None, bool]] = []

    async def run(self, connection_id: str, trigger: str, *, run_id: str | None = None,
                  next_run_at: datetime | None = None) -> RunRecord:  # fmt: skip
        loop = asyncio.get_running_loop()
        index = len(self.spans)
        start = loop.time()
        self.spans.append((start, None, False))
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.spans[index] = (start, loop.time(), True)
            raise
        self.spans[index] = (start, loop.time(), False)
        now = datetime.now(UTC)
        return RunRecord(id=run_id or "r", connection_id=connection_id, trigger=trigger, started_at=now,
                         finished_at=now, outcome=RunOutcome.SUCCEEDED)  # fmt: skip

    def running_at(self, moment: float) -> int:
        return sum(1 for start, end, _ in self.spans if start <= moment and (end is None or end > moment))


async def test_a_run_stops_when_its_lease_ends_even_if_the_store_is_unreachable(tmp_path: Path) -> None:
    """FOUND and fixed in bot/sync/scheduler.py: the lease keeper cancelled a run only when the store
    answered "not yours", so with the store unreachable the run outlived its lease, and the same worker
    re-claimed the connection under the same owner name: two runs at once. The keeper now cancels the
    run when the lease's end passes on the local clock, and a process never starts a connection it is
    still running."""
    inner = await SqliteStore.open(tmp_path / "connector.db")
    store = FlakyStore(inner)
    connection = Connection(id="conn-1", name="Acme", teams_tenant_id="t", conversation_key="msteams:c",
                            created_by_aad_id="u", xero_tenant_id="x")  # fmt: skip
    await inner.create_connection(connection)
    await inner.schedule(connection.id, datetime.now(UTC), on_demand=True)
    runner = RecordingRunner(seconds=3.0)
    scheduler = Scheduler(store, runner, owner="worker-1", poll_seconds=0.05, lease_seconds=LEASE)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    await scheduler.start()
    try:
        for _ in range(100):
            if runner.spans:
                break
            await asyncio.sleep(0.02)
        assert runner.spans, "the run started"
        store.down = True
        await asyncio.sleep(LEASE * 2)  # the lease is over, the store still unreachable
        still_running = runner.running_at(loop.time())
        store.down = False
        await asyncio.sleep(LEASE)  # the store is back: the connection is claimable again
        overlap = max(runner.running_at(start) for start, _, _ in runner.spans)
        runs = len(runner.spans)
    finally:
        await scheduler.stop(0.5)
        await inner.close()
    assert still_running == 0, "the run went on after its lease ended"
    assert overlap == 1, "two runs of one connection at once"
    assert runs == 2, "the interrupted run is picked up again once the store is back"
