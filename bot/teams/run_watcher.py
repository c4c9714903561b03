"""`RunWatcher`: the cards for runs this bot process did not execute (separate `bot.sync.worker` processes).

Workers tell nobody (their notifier is a NullNotifier); every run they execute is in the store. The watcher
polls the recent runs of every connection and reports what nobody reported yet, through the same
`TeamsNotifier`: a run seen running gets its start reported (which hands it the `now` card waiting for it),
a finished run its result. The claims in the card book make each report happen once, whether the run
was executed here (the engine told the notifier directly) or elsewhere; the watcher leaves a run
`grace_seconds` for the in-process path before it steps in, and ignores runs older than `lookback`.

The alerts a worker's engine raised are lost with its NullNotifier, so for runs it reports the watcher
derives them from what the run left in the store:
- reconnect Xero / Dynamics 365: the run failed and left the connection needing reconnection (what
  to redo is the run's `attention`, which the engine stores with the failure);
- repeated failures: this run made it three failed runs in a row;
- Xero's daily allowance: the calls left fell below the warning level with this run;
- timezone: the Xero organisation's zone differs from the one recorded at the previous report.

Cost: one `list_runs` per connection and poll. With Redis and thousands of connections, raise
`poll_seconds`; with one process running the scheduler itself, the watcher is not needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from bot.errors import ConnectorError
from bot.storage.base import Connection, ConnectionStatus, RunOutcome, RunRecord, Store, utcnow
from bot.sync.clock import Now
from bot.sync.failures import RunFailure, attention_after_run
from bot.sync.ports import AttentionReason
from bot.teams.notifier import TeamsNotifier
from bot.teams.runcards import Claim

log = logging.getLogger(__name__)

DAY_LIMIT_WARNING = 500  # the engine's default `day_limit_warning`
RUNS_LOOKED_AT = 3
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
                await self.scan_once()
            except ConnectorError:
                log.warning("watching runs failed; retrying", exc_info=True)
            except Exception:
                log.exception("unexpected error while watching runs")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._poll)

    async def scan_once(self) -> int:
        """One pass over every connection; returns how many starts and ends this pass reported."""
        if len(self._seen) > _SEEN_MAX:
            self._seen.clear()
        reported = 0
        for connection in await self._store.list_connections():
            if connection.status == ConnectionStatus.DISCONNECTED:
                continue
            runs = await self._store.list_runs(connection.id, limit=RUNS_LOOKED_AT)
            reported += await self._look_at(connection, runs)
        return reported

    async def _look_at(self, connection: Connection, runs: list[RunRecord]) -> int:
        now = self._clock()
        reported = 0
        # Oldest first, so results arrive in the order the runs happened.
        for index in range(len(runs) - 1, -1, -1):
            run = runs[index]
            if run.started_at < now - self._lookback:
                continue
            if run.outcome == RunOutcome.RUNNING:
                if (run.id, "start") in self._seen or now - run.started_at < self._grace:
                    continue
                self._seen.add((run.id, "start"))
                state = await self._notifier.book.state(connection.id, run.id)
                if state is None or not state.started:
                    await self._notifier.run_started(connection, run)
                    reported += 1
                continue
            finished = run.finished_at or run.started_at
            if (run.id, "end") in self._seen or now - finished < self._grace:
                continue
            self._seen.add((run.id, "end"))
            claim = await self._notifier.report_finished(connection, run)
            if claim.claimed:
                reported += 1
                previous = runs[index + 1] if index + 1 < len(runs) else None
                for reason, detail in self.derived_alerts(
                    connection, run, previous, claim, newest=index == 0
                ):
                    await self._notifier.needs_attention(connection, reason, detail)
        return reported

    def derived_alerts(
        self,
        connection: Connection,
        run: RunRecord,
        previous: RunRecord | None,
        claim: Claim,
        *,
        newest: bool,
    ) -> list[tuple[AttentionReason, str]]:
        """The alerts the run's engine raised, from the store: the engine's own rules
        (`attention_after_run`) applied to the connection as it was before the run, pieced together."""
        failed = run.outcome == RunOutcome.FAILED
        failure: RunFailure | None = None
        if (
            failed
            and newest
            and connection.status == ConnectionStatus.NEEDS_RECONNECTION
            and connection.status_reason == run.error
        ):
            failure = RunFailure(run.error, attention=run.attention, provider=run.failed_provider or "")
        before = connection.model_copy(
            update={
                # Only the newest run's effect on the count is known; older ones changed nothing we can see.
                "consecutive_failures": connection.consecutive_failures - (1 if failed and newest else 0),
                "xero_day_remaining": previous.xero_day_remaining if previous is not None else None,
                "xero_timezone": claim.previous_xero_timezone,
            }
        )
        return attention_after_run(before, connection, run, failure, self._day_limit_warning)
