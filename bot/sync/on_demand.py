"""On-demand runs ("sync now"): they jump the queue, join a run already under way instead of starting a
second one, and are limited per day by the plan (a counter in the store, shared by every process).

`OnDemandRuns` is the part of the `Scheduler` (bot.sync.scheduler) that answers a person; the lease loop
that executes runs stays there. The answer is a `RunRequest` with typed reasons: the Teams layer words
them (bot.teams.runcards.request_sentence), the core writes no sentence for a chat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConnectorError
from bot.storage.base import Connection, ConnectionStatus, RunOutcome, RunRecord, RunTrigger, Store
from bot.storage.helpers import update_connection
from bot.sync.plans import plan_of
from bot.sync.ports import Clock

log = logging.getLogger(__name__)


class Refusal(StrEnum):
    """Why an on-demand run was not started (the Teams layer words each one)."""

    NOT_FOUND = "not_found"
    PAUSED = "paused"
    NEEDS_RECONNECTION = "needs_reconnection"
    DISCONNECTED = "disconnected"
    DAILY_ALLOWANCE = "daily_allowance"


@dataclass(frozen=True)
class RunRequest:
    """The answer to "sync now": started, joined a run under way, queued, or refused (and why)."""

    started: bool
    run_id: str = ""
    started_at: datetime | None = None
    joined: bool = False
    refused_reason: Refusal | None = None  # None unless refused
    queued: bool = False  # accepted, but no worker has started it yet
    used_today: int = 0
    allowance: int = 0


@dataclass
class InFlight:
    """A run this process is executing."""

    run_id: str
    started_at: datetime
    task: asyncio.Task[None]
    # A due time the store handed back while this run was still going (`Scheduler._hold`): kept for its release.
    requeue_at: datetime | None = None


def local_day(connection: Connection, now: datetime) -> str:
    """The connection's calendar day (its own timezone), for the daily allowance."""
    try:
        zone = ZoneInfo(connection.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone).date().isoformat()


_STATUS_REFUSALS = {
    ConnectionStatus.PAUSED: Refusal.PAUSED,
    ConnectionStatus.NEEDS_RECONNECTION: Refusal.NEEDS_RECONNECTION,
    ConnectionStatus.DISCONNECTED: Refusal.DISCONNECTED,
}


class OnDemandRuns:
    """The Scheduler's answer to a person. It shares the scheduler's in-flight map, claim lock and wake-up
    event (passed in, not copied), and `claim` asks the scheduler's loop to claim at once, under the lock,
    when it is running in this process."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        inflight: Mapping[str, InFlight],
        claim_lock: asyncio.Lock,
        wake: asyncio.Event,
        claim: Callable[[], Awaitable[None]],
        start_wait: float,
    ) -> None:
        self._store = store
        self._clock = clock
        self._inflight = inflight
        self._claim_lock = claim_lock
        self._wake = wake
        self._claim = claim
        self._start_wait = start_wait

    async def request_run(self, connection_id: str, *, requested_by: str = "") -> RunRequest:
        """Start a run now, or join the one under way. Refused when paused or over the daily allowance."""
        now = self._clock.now()
        # Under the claim lock, this process's loop cannot start the connection between the check
        # for a run under way and the on-demand entry (which would then run twice, one after the other).
        async with self._claim_lock:
            answer = await self._accept(connection_id, now, requested_by)
            if answer is not None:
                return answer
            await self._store.schedule(connection_id, now, on_demand=True)
            await self._claim()
        self._wake.set()
        used = await self._store.get_connection(connection_id)
        allowance = plan_of(used).on_demand_per_day if used else 0
        used_today = used.on_demand_runs_today if used else 0
        started = await self._wait_for_start(connection_id, since=now)
        if started is None:
            return RunRequest(started=False, queued=True, used_today=used_today, allowance=allowance)
        return RunRequest(
            started=True,
            run_id=started.id,
            started_at=started.started_at,
            used_today=used_today,
            allowance=allowance,
        )

    async def _accept(self, connection_id: str, now: datetime, requested_by: str) -> RunRequest | None:
        """None if a new run may start (its use of the allowance counted); else the answer to give."""
        joined = await self.find_running(connection_id)
        if joined is not None:
            return RunRequest(started=False, run_id=joined.id, started_at=joined.started_at, joined=True)
        connection = await self._store.get_connection(connection_id)
        if connection is None:
            return RunRequest(started=False, refused_reason=Refusal.NOT_FOUND)
        refusal = _STATUS_REFUSALS.get(connection.status)
        if refusal is not None:
            return RunRequest(started=False, refused_reason=refusal)
        plan = plan_of(connection)
        day = local_day(connection, now)
        used = await self._store.incr_counter(f"on_demand:{connection_id}:{day}", ttl_seconds=2 * 86400)
        if used > plan.on_demand_per_day:
            return RunRequest(
                started=False,
                refused_reason=Refusal.DAILY_ALLOWANCE,
                used_today=plan.on_demand_per_day,
                allowance=plan.on_demand_per_day,
            )
        await self._record_allowance(connection_id, day, used)
        log.info("on-demand run requested", extra={"connection_id": connection_id, "by": requested_by})
        return None

    async def find_running(self, connection_id: str) -> RunRecord | None:
        """The run under way for this connection, in this process or another, if any."""
        local = self._inflight.get(connection_id)
        if local is not None:
            record = await self._store.get_run(local.run_id)
            if record is not None:
                return record
            # Not saved yet: only its id and start time are known. The trigger is a stand-in (a card
            # words it as "scheduled", as it did when this stand-in had no trigger at all).
            return RunRecord(
                id=local.run_id,
                connection_id=connection_id,
                trigger=RunTrigger.SCHEDULE,
                started_at=local.started_at,
            )
        if await self._store.lease_holder(connection_id) is None:
            return None
        for run in await self._store.list_runs(connection_id, limit=3):
            if run.outcome == RunOutcome.RUNNING:
                return run
        return None

    async def _wait_for_start(self, connection_id: str, since: datetime) -> RunRecord | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._start_wait
        # Records older than the request (a crashed worker's) are not the run we asked for.
        threshold = since - timedelta(seconds=1)
        while True:
            local = self._inflight.get(connection_id)
            if local is not None and not local.task.done():
                # Started here: give the engine a moment to save its record, whose start time is the truth.
                saved = await self._store.get_run(local.run_id)
                if saved is not None:
                    return saved
                if loop.time() >= deadline:
                    return await self.find_running(connection_id)
                await asyncio.sleep(0.01)
                continue
            run = await self.find_running(connection_id)
            if run is not None and run.started_at >= threshold:
                return run
            latest = await self._store.list_runs(connection_id, limit=1)
            if latest and latest[0].started_at >= threshold:
                return latest[0]  # so quick it already finished
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(0.05)

    async def _record_allowance(self, connection_id: str, day: str, used: int) -> None:
        def apply(c: Connection) -> Connection:
            return c.model_copy(update={"on_demand_runs_today": used, "on_demand_day": day})

        try:
            await update_connection(self._store, connection_id, apply)
        except ConnectorError:
            log.warning("could not record the on-demand count", exc_info=True)
