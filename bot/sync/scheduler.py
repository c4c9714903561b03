"""The scheduler: claims due runs from the store, runs them with bounded concurrency, reschedules them.

The store's due set with leases (`ScheduleStore`) is the backbone, so several worker processes can run
side by side: a claimed connection is invisible to other claimers until its lease ends, a run extends
its lease while it goes, and a crashed worker's lease simply expires so another worker picks the
connection up. One connection never runs twice at once: a run whose lease is lost, or whose lease has
ended on this process's clock because the store could not be reached to extend it, is cancelled; and a
process never starts a connection it is still running (the store hands an expired lease back to the
same owner name).

The due set is kept consistent by whoever changes a connection (setup, resume, reconnect schedule it);
`reconcile` is the safety net for a process that died in between. It reads every connection, so it is
not done by every scheduler at start (an idle worker would cost memory and CPU in proportion to the
connections): the scheduler that takes the store's reconcile lock runs it in the background, and the
lock's time to live (`reconcile_every_seconds`, an hour) makes that one scheduler in the fleet an hour.

On-demand runs (`request_run`) jump the queue and join a run already under way instead of starting a
second one: that part is `bot.sync.on_demand.OnDemandRuns`, which the scheduler owns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import datetime, timedelta
from typing import Protocol

from bot import metrics
from bot.errors import ConnectorError
from bot.storage.base import Claim, Connection, ConnectionStatus, RunRecord, RunTrigger, Store
from bot.sync.on_demand import InFlight, OnDemandRuns, Refusal, RunRequest
from bot.sync.plans import plan_of
from bot.sync.ports import Clock, SystemClock

log = logging.getLogger(__name__)

__all__ = ["RECONCILE_LOCK", "Refusal", "RunRequest", "Runner", "Scheduler"]

RECONCILE_LOCK = "scheduler:reconcile"


class Runner(Protocol):
    """What the scheduler needs of the engine (`SyncEngine` is the one implementation)."""

    async def run(
        self,
        connection_id: str,
        trigger: RunTrigger,
        *,
        run_id: str | None = None,
        next_run_at: datetime | None = None,
    ) -> RunRecord: ...


class Scheduler:
    """Runs due connections. One per process; any number of processes may share a store."""

    def __init__(
        self,
        store: Store,
        engine: Runner,
        *,
        owner: str,
        poll_seconds: float = 1.0,
        lease_seconds: float = 120.0,
        concurrency: int = 8,
        jitter: float = 0.1,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        start_wait_seconds: float = 5.0,
        reconcile_every_seconds: float = 3600.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._store = store
        self._engine = engine
        self.owner = owner
        self._poll = poll_seconds
        self._lease = lease_seconds
        self._concurrency = concurrency
        # A fraction of the plan's interval added at random, so tenants set up together spread out.
        self._jitter = max(0.0, jitter)
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()  # spreading load, not security
        self._reconcile_every = reconcile_every_seconds
        self._next_reconcile = 0.0  # on the event loop's clock: at the first poll
        self._reconcile_task: asyncio.Task[None] | None = None
        self._inflight: dict[str, InFlight] = {}
        self._claim_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._on_demand = OnDemandRuns(
            store,
            self._clock,
            inflight=self._inflight,
            claim_lock=self._claim_lock,
            wake=self._wake,
            claim=self._claim_if_running,
            start_wait=start_wait_seconds,
        )
        self._stopping = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def request_run(self, connection_id: str, *, requested_by: str = "") -> RunRequest:
        """"sync now": see bot.sync.on_demand."""
        return await self._on_demand.request_run(connection_id, requested_by=requested_by)

    async def find_running(self, connection_id: str) -> RunRecord | None:
        return await self._on_demand.find_running(connection_id)

    async def _claim_if_running(self) -> None:
        """Called by an on-demand request, under the claim lock: claim now rather than at the next poll."""
        if self.running:
            await self._claim_locked()

    async def start(self) -> None:
        """Start claiming. The reconcile (see the module doc) is tried at the first poll, in the background."""
        if self.running:
            return
        self._stopping.clear()
        self._next_reconcile = 0.0
        self._loop_task = asyncio.create_task(self._loop(), name=f"scheduler:{self.owner}")

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop claiming, let in-flight runs finish for up to `grace_seconds`, then cancel and release them."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
            await asyncio.gather(self._reconcile_task, return_exceptions=True)
            self._reconcile_task = None
        tasks = [f.task for f in self._inflight.values()]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d run(s) still going at shutdown", len(pending))
            await asyncio.gather(*pending, return_exceptions=True)

    async def reconcile(self) -> int:
        """Schedule every active connection that has no due time and no lease. Returns how many."""
        fixed = 0
        now = self._clock.now()
        for connection in await self._store.list_connections():
            if connection.status != ConnectionStatus.ACTIVE:
                continue
            if await self._store.get_due(connection.id) is not None:
                continue
            if await self._store.lease_holder(connection.id) is not None:
                continue
            due = connection.next_run_at or now
            await self._store.schedule(connection.id, min(due, now + plan_of(connection).interval))
            fixed += 1
        return fixed

    async def _maybe_reconcile(self) -> None:
        """Reconcile in the background if it is time and the fleet's reconcile lock is ours."""
        now = asyncio.get_running_loop().time()
        if now < self._next_reconcile or (
            self._reconcile_task is not None and not self._reconcile_task.done()
        ):
            return
        ours = await self._store.acquire_lock(RECONCILE_LOCK, self.owner, self._reconcile_every)
        self._next_reconcile = now + self._reconcile_every  # after the store answered: else retried next poll
        if ours:
            self._reconcile_task = asyncio.create_task(
                self._reconcile_logged(), name=f"reconcile:{self.owner}"
            )

    async def _reconcile_logged(self) -> None:
        try:
            fixed = await self.reconcile()
        except ConnectorError:
            log.warning("could not reconcile the due set; the next holder of the lock retries", exc_info=True)
            return
        if fixed:
            log.warning("reconcile scheduled %d active connection(s) missing from the due set", fixed)

    # ---- scheduling ------------------------------------------------------------------------------

    def next_due(self, connection: Connection, after: datetime) -> datetime:
        """The plan's interval after `after`, plus jitter."""
        interval = plan_of(connection).interval
        spread = self._rng.uniform(0.0, self._jitter * interval.total_seconds())
        return after + interval + timedelta(seconds=spread)

    async def schedule_first_run(self, connection_id: str) -> None:
        """Due now, ahead of the queue: the first run starts within seconds of setup."""
        await self._store.schedule(connection_id, self._clock.now(), on_demand=True)
        self._wake.set()

    # ---- the loop --------------------------------------------------------------------------------

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._maybe_reconcile()
                await self._claim_and_start()
            except ConnectorError:
                log.warning("claiming due runs failed; retrying", exc_info=True)
            except Exception:
                log.exception("unexpected error while claiming due runs")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll)
            self._wake.clear()

    async def _claim_and_start(self) -> None:
        async with self._claim_lock:
            await self._claim_locked()

    async def _claim_locked(self) -> None:
        if self._stopping.is_set():
            return
        free = self._concurrency - len(self._inflight)
        metrics.polled(len(self._inflight), self._concurrency)
        if free <= 0:
            return
        # The store starts the lease after this moment, so on our clock it ends by `asked_at + lease`.
        asked_at = asyncio.get_running_loop().time()
        claims = await self._store.claim_due(self._clock.now(), self.owner, self._lease, free)
        metrics.claims_made([(c.due_at, c.on_demand) for c in claims], self._clock.now())
        for claim in claims:
            current = self._inflight.get(claim.connection_id)
            if current is not None:
                self._hold(current, claim)
            else:
                self._start(claim, asked_at + self._lease)

    def _hold(self, current: InFlight, claim: Claim) -> None:
        """A claim for a connection whose run is still going here: its lease ran out in the store (the
        run is being cancelled for it) and the store gave the connection back under our own name.
        Starting it would run it twice. The run under way releases this lease as its own when it ends
        (it is ours by name, and releasing is serialised with claiming by `_claim_lock`), and the
        claim's due time is kept for that release, so the store's due time is not lost."""
        due = claim.due_at if current.requeue_at is None else min(current.requeue_at, claim.due_at)
        current.requeue_at = due
        log.warning(
            "connection %s was handed back while its run %s is still going here; not starting it twice",
            claim.connection_id,
            current.run_id,
        )

    def _start(self, claim: Claim, lease_end: float) -> None:
        run_id = uuid.uuid4().hex
        started_at = self._clock.now()
        task = asyncio.create_task(
            self._run_claim(claim, run_id, lease_end), name=f"run:{claim.connection_id}"
        )
        self._inflight[claim.connection_id] = InFlight(run_id, started_at, task)
        connection_id = claim.connection_id
        task.add_done_callback(lambda _t: self._done(connection_id, run_id))

    def _done(self, connection_id: str, run_id: str) -> None:
        # Normally `_run_claim` has forgotten the run already; not if it was cancelled before it began.
        self._forget(connection_id, run_id)
        self._wake.set()  # a slot is free

    def _forget(self, connection_id: str, run_id: str) -> None:
        current = self._inflight.get(connection_id)
        if current is not None and current.run_id == run_id:
            del self._inflight[connection_id]

    async def _run_claim(self, claim: Claim, run_id: str, lease_end: float) -> None:
        cid = claim.connection_id
        me = asyncio.current_task()
        assert me is not None
        keeper = asyncio.create_task(self._keep_lease(cid, me, lease_end), name=f"lease:{cid}")
        planned: datetime | None = None
        interrupted = False
        try:
            connection = await self._store.get_connection(cid)
            if connection is not None:
                planned = self.next_due(connection, self._clock.now())
                trigger = _trigger(claim, connection)
                log.info("run %s of connection %s started (%s) by %s", run_id, cid, trigger, self.owner)
                run = await self._engine.run(cid, trigger, run_id=run_id, next_run_at=planned)
                log.info("run %s of connection %s finished: %s", run_id, cid, run.outcome.value)
        except asyncio.CancelledError:
            interrupted = True
            raise
        except Exception:
            log.exception("run failed outside the engine", extra={"connection_id": cid})
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            # A cancelled run may end with the engine's error saving its record (the store being away)
            # instead of CancelledError: it was interrupted all the same.
            interrupted = interrupted or me.cancelling() > 0
            # Under the claim lock, so that a claim coming back for this connection meanwhile is either
            # held for this release (`_hold`) or made after it, when this run is no longer in flight.
            async with self._claim_lock:
                entry = self._inflight.get(cid)
                requeue = entry.requeue_at if entry is not None and entry.run_id == run_id else None
                await self._release(cid, planned, interrupted, requeue)
                self._forget(cid, run_id)

    async def _release(
        self,
        connection_id: str,
        planned: datetime | None,
        interrupted: bool,
        requeue_at: datetime | None = None,
    ) -> None:
        try:
            connection = await self._store.get_connection(connection_id)
            next_due: datetime | None = None
            if connection is not None and connection.status == ConnectionStatus.ACTIVE:
                # An interrupted run is picked up again at once (by this process or another).
                now = self._clock.now()
                next_due = now if interrupted else (planned or self.next_due(connection, now))
                if requeue_at is not None:
                    next_due = min(next_due, requeue_at)
            if not await self._store.release(connection_id, self.owner, next_due):
                log.warning("lease was no longer ours at release", extra={"connection_id": connection_id})
        except ConnectorError:
            log.warning("could not release a lease; it expires by itself", exc_info=True)

    async def _keep_lease(self, connection_id: str, run_task: asyncio.Task[None], lease_end: float) -> None:
        """Extend the lease while the run goes; cancel the run once the lease is lost or has ended.

        `lease_end` is when the lease ends at the latest, on the event loop's clock: the moment the claim
        (then the last extension that succeeded) was asked for, plus the lease. From then on any worker
        may claim the connection, so the run stops even when the store cannot be reached to say so."""
        loop = asyncio.get_running_loop()
        every = self._lease / 3
        while True:
            remaining = lease_end - loop.time()
            if remaining <= 0:
                log.error(
                    "the lease of connection %s ended without being extended (store unreachable); "
                    "cancelling its run",
                    connection_id,
                )
                run_task.cancel()
                return
            await asyncio.sleep(min(every, remaining))
            asked_at = loop.time()
            if asked_at >= lease_end:
                continue
            try:
                # A store call that hangs (a dead connection) must not outlast the lease either.
                ours = await asyncio.wait_for(
                    self._store.extend_lease(connection_id, self.owner, self._lease),
                    timeout=lease_end - asked_at,
                )
            except Exception:
                # Whatever went wrong, the lease was not extended; the deadline above still holds.
                log.warning(
                    "could not extend the lease of connection %s; retrying", connection_id, exc_info=True
                )
                continue
            if not ours:
                # Another worker may already be running it: stop, so one connection never runs twice.
                log.error("lease lost during a run; cancelling it", extra={"connection_id": connection_id})
                run_task.cancel()
                return
            lease_end = asked_at + self._lease


def _trigger(claim: Claim, connection: Connection) -> RunTrigger:
    if connection.last_run_at is None:
        return RunTrigger.SETUP
    return RunTrigger.ON_DEMAND if claim.on_demand else RunTrigger.SCHEDULE
