"""`RunWatcher`: the cards for runs this bot process did not execute (separate `bot.worker` processes).

Workers tell nobody (their notifier is a NullNotifier); every run they execute is in the store, and the
engine appends a STARTED and a FINISHED event to the store's run-event feed (`RunEventFeed`). The
watcher reads the feed on from its cursor and reports what nobody reported yet, through the same
`TeamsNotifier`: a run seen running gets its start reported (which hands it the `now` card waiting for it),
a finished run its result. The claims in the card book make each report happen once, whether the run
was executed here (the engine told the notifier directly) or elsewhere, and whichever of several bot
processes (each reads the whole feed) gets there first; the watcher leaves a run `grace_seconds` for the
in-process path before it steps in, and ignores runs older than `lookback`.

At start it reads the feed from its oldest kept event, skipping events older than the lookback: that
covers the runs of the time the bot was down, as far back as the feed keeps (`RUN_EVENTS_KEPT` events:
50 minutes of runs at 10,000 connections on the 10-minute plan, 5 at 100,000), in batches, so a start
costs memory and CPU in proportion to the recent runs, not to the connections (a rescan of every
connection's runs, `scan_once`, loaded them all: 50 MiB and 1.7 s of CPU at 10,000). After that a poll
is one feed read plus a few store reads per event.

The alerts a worker's engine raised are lost with its NullNotifier, so for runs it reports the watcher
derives them from what the run left in the store:
- reconnect Xero / Dynamics 365: the run failed and left the connection needing reconnection (what
  to redo is the run's `attention`, which the engine stores with the failure);
- repeated failures: this run made it three failed runs in a row;
- Xero's daily allowance: the calls left fell below the warning level with this run;
- timezone: the Xero organisation's zone differs from the one recorded at the previous report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime, timedelta

from bot.errors import ConnectorError
from bot.storage.base import (
    Connection,
    ConnectionStatus,
    FailureKind,
    RunEvent,
    RunEventKind,
    RunOutcome,
    RunRecord,
    Store,
    utcnow,
)
from bot.sync.clock import Now
from bot.sync.failures import RunFailure, attention_after_run
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.teams.notifier import TeamsNotifier
from bot.teams.runcards import Claim

log = logging.getLogger(__name__)

DAY_LIMIT_WARNING = 500  # the engine's default `day_limit_warning`
RUNS_LOOKED_AT = 3
FEED_BATCH = 500  # events read at a time
FEED_BATCHES_PER_POLL = 20  # a watcher that fell behind catches up by this much a poll
_SEEN_MAX = 20_000


class RunWatcher:
    def __init__(
        self,
        store: Store,
        notifier: TeamsNotifier,
        *,
        poll_seconds: float = 3.0,
        grace_seconds: float = 5.0,
        lookback: timedelta = timedelta(minutes=30),
        day_limit_warning: int = DAY_LIMIT_WARNING,
        clock: Now = utcnow,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._poll = poll_seconds
        self._grace = timedelta(seconds=grace_seconds)
        self._lookback = lookback
        self._day_limit_warning = day_limit_warning
        self._clock = clock
        # (run id, phase) already claimed by someone: not asked about again.
        self._seen: set[tuple[str, str]] = set()
        # Where this watcher reads the feed on from ("": the oldest event kept), and the events read but
        # still within the grace (oldest first).
        self._cursor = ""
        self._pending: deque[RunEvent] = deque()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None or self._task.done():
            self._stopping.clear()
            self._task = asyncio.create_task(self._loop(), name="run-watcher")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except ConnectorError:
                log.warning("watching runs failed; retrying", exc_info=True)
            except Exception:
                log.exception("unexpected error while watching runs")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._poll)

    async def poll_once(self) -> int:
        """Read the feed on from the cursor and report the runs of the events past the grace; returns
        how many starts and ends it reported. A failed read keeps the cursor (the next poll retries)."""
        for _ in range(FEED_BATCHES_PER_POLL):
            events, cursor = await self._store.read_run_events(self._cursor, FEED_BATCH)
            self._cursor = cursor
            self._pending.extend(self._worth_looking_at(events))
            if len(events) < FEED_BATCH:
                break
        self._forget_if_full()
        reported = 0
        while self._pending:
            event = self._pending[0]
            try:
                outcome = await self._on_event(event)
            except ConnectorError:
                raise  # the store is away: this event waits for the next poll
            except Exception:
                log.exception("could not report run %s; skipping it", event.run_id)
                outcome = 0
            if outcome is None:
                break  # within the grace: it, and what came after it, wait for the next poll
            self._pending.popleft()
            reported += outcome
        return reported

    def _worth_looking_at(self, events: list[RunEvent]) -> list[RunEvent]:
        """Without a store call: not events older than the lookback (on the store's clock; the run's own
        times are checked again later), nor the start of a run whose end is in the same batch."""
        oldest = self._clock() - self._lookback
        ended = {e.run_id for e in events if e.kind == RunEventKind.FINISHED}
        return [
            e for e in events if e.at >= oldest and (e.kind == RunEventKind.FINISHED or e.run_id not in ended)
        ]

    async def _on_event(self, event: RunEvent) -> int | None:
        started = event.kind == RunEventKind.STARTED
        if (event.run_id, "start" if started else "end") in self._seen:
            return 0
        connection = await self._store.get_connection(event.connection_id)
        if connection is None or connection.status == ConnectionStatus.DISCONNECTED:
            return 0
        runs = await self._store.list_runs(connection.id, limit=RUNS_LOOKED_AT)
        index = next((i for i, r in enumerate(runs) if r.id == event.run_id), None)
        # Not among the newest: three runs followed it already, as a rescan would not look at it either.
        # A start event of a run that has finished since: its end event reports it.
        if index is None or (runs[index].outcome == RunOutcome.RUNNING) != started:
            return 0
        return await self._consider(connection, runs, index, self._clock())

    async def scan_once(self) -> int:
        """One pass over every connection's recent runs; returns how many starts and ends it reported.
        Not used by the loop (it reads the feed); for a caller that wants to be sure nothing was missed."""
        self._forget_if_full()
        reported = 0
        for connection in await self._store.list_connections():
            if connection.status == ConnectionStatus.DISCONNECTED:
                continue
            runs = await self._store.list_runs(connection.id, limit=RUNS_LOOKED_AT)
            reported += await self._look_at(connection, runs)
        return reported

    def _forget_if_full(self) -> None:
        if len(self._seen) > _SEEN_MAX:
            self._seen.clear()

    async def _look_at(self, connection: Connection, runs: list[RunRecord]) -> int:
        now = self._clock()
        reported = 0
        # Oldest first, so results arrive in the order the runs happened.
        for index in range(len(runs) - 1, -1, -1):
            reported += await self._consider(connection, runs, index, now) or 0
        return reported

    def _young(self, now: datetime, at: datetime) -> bool:
        """Within the grace left to the process that ran it. A time ahead of our clock (a worker's clock
        ahead of ours) is not waited for: a feed would otherwise stall behind it."""
        return timedelta(0) <= now - at < self._grace

    async def _consider(
        self, connection: Connection, runs: list[RunRecord], index: int, now: datetime
    ) -> int | None:
        """Report `runs[index]` (newest first) if nobody did: 1 if reported, 0 if not, None if it is
        still within the grace."""
        run = runs[index]
        if run.started_at < now - self._lookback:
            return 0
        if run.outcome == RunOutcome.RUNNING:
            if (run.id, "start") in self._seen:
                return 0
            if self._young(now, run.started_at):
                return None
            self._seen.add((run.id, "start"))
            state = await self._notifier.book.state(connection.id, run.id)
            if state is None or not state.started:
                await self._notifier.run_started(connection, run)
                return 1
            return 0
        if (run.id, "end") in self._seen:
            return 0
        if self._young(now, run.finished_at or run.started_at):
            return None
        self._seen.add((run.id, "end"))
        claim = await self._notifier.report_finished(connection, run)
        if not claim.claimed:
            return 0
        previous = runs[index + 1] if index + 1 < len(runs) else None
        for reason, detail in self.derived_alerts(connection, run, previous, claim, newest=index == 0):
            await self._notifier.needs_attention(connection, reason, detail)
        return 1

    def derived_alerts(
        self,
        connection: Connection,
        run: RunRecord,
        previous: RunRecord | None,
        claim: Claim,
        *,
        newest: bool,
    ) -> list[tuple[AttentionReason, AttentionDetail]]:
        """The alerts the run's engine raised, from the store: the engine's own rules
        (`attention_after_run`) applied to the connection as it was before the run, pieced together."""
        failed = run.outcome == RunOutcome.FAILED
        failure: RunFailure | None = None
        # What the run left as the connection's reason: its failure kind (a run stored before kinds: its text).
        left = run.failure_kind or run.error
        on_hold = connection.status == ConnectionStatus.NEEDS_RECONNECTION
        if failed and newest and on_hold and left == connection.status_reason:
            # The alert's words come from the run record (`attention_after_run`); the failure gives the reason.
            failure = RunFailure(
                run.failure_kind or FailureKind.PROVIDER_ERROR,
                attention=run.attention,
                provider=run.failed_provider or "",
            )
        before = connection.model_copy(
            update={
                # Only the newest run's effect on the count is known; older ones changed nothing we can see.
                "consecutive_failures": connection.consecutive_failures - (1 if failed and newest else 0),
                "xero_day_remaining": previous.xero_day_remaining if previous is not None else None,
                "xero_timezone": claim.previous_xero_timezone,
            }
        )
        return attention_after_run(before, connection, run, failure, self._day_limit_warning)
