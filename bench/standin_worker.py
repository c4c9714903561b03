"""`python -m bench.standin_worker`: the shipped worker (`bot.sync.worker.serve`) with a stand-in run.

The sandboxes cannot serve 100,000 Xero organisations on this machine, so for the sizes part of the
scale benchmark (bench/scale_sizes.py) the sync engine is replaced by `StandInRun`, which does what a
steady-state run does to the store and waits as long as such a run waits on Xero and Dynamics:

    load the connection -> save the RUNNING record, append STARTED -> wait (`BENCH_RUN_SECONDS`, 0.7 s:
    4 Xero reads at 150 ms and a Dynamics write at 100 ms) -> update the connection, save the final
    record, append FINISHED

Everything else is the worker as shipped: settings, the store (Redis Cluster here), the Scheduler with its
claims, leases and releases, `WORKER_CONCURRENCY`, the signals.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime

from bot.config import load_settings
from bot.logs import configure_logging
from bot.storage.base import (
    Connection,
    ConnectionStatus,
    RunEventKind,
    RunOutcome,
    RunRecord,
    RunTrigger,
    Store,
    utcnow,
)
from bot.storage.helpers import update_connection
from bot.sync.worker import serve

RUN_SECONDS = float(os.environ.get("BENCH_RUN_SECONDS", "0.7"))


class StandInRun:
    """A `Runner` (bot.sync.scheduler) that touches the store as a run does, without the providers."""

    def __init__(self, store: Store, seconds: float = RUN_SECONDS) -> None:
        self._store = store
        self._seconds = seconds

    async def run(
        self,
        connection_id: str,
        trigger: RunTrigger,
        *,
        run_id: str | None = None,
        next_run_at: datetime | None = None,
    ) -> RunRecord:
        started = utcnow()
        record = RunRecord(
            id=run_id or uuid.uuid4().hex, connection_id=connection_id, trigger=trigger, started_at=started
        )
        connection = await self._store.get_connection(connection_id)
        if connection is None or connection.status != ConnectionStatus.ACTIVE:
            return record.model_copy(update={"outcome": RunOutcome.SKIPPED, "finished_at": started})
        await self._store.save_run(record)
        await self._store.append_run_event(connection_id, record.id, RunEventKind.STARTED)
        await asyncio.sleep(self._seconds)
        finished = utcnow()
        record = record.model_copy(update={"outcome": RunOutcome.SUCCEEDED, "finished_at": finished})

        def apply(c: Connection) -> Connection:
            return c.model_copy(
                update={
                    "last_run_at": started,
                    "last_success_at": finished,
                    "last_outcome": RunOutcome.SUCCEEDED.value,
                    "next_run_at": next_run_at,
                    "updated_at": finished,
                }
            )

        await update_connection(self._store, connection_id, apply)
        await self._store.save_run(record)
        await self._store.append_run_event(connection_id, record.id, RunEventKind.FINISHED)
        return record


def main() -> None:
    settings = load_settings()
    configure_logging(settings.log_level)
    asyncio.run(serve(settings, runner=StandInRun))


if __name__ == "__main__":
    main()
