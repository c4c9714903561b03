"""The sync core as the Teams layer sees it: run now, pause, resume, when is the next run, history.

The bot process may or may not run a scheduler loop itself (`RUN_SCHEDULER`): either way `run_now`
goes through the store's due set, so a worker process picks the run up when the bot does not.
Pause and resume are written to the store (the source of truth) and then, best effort, to the
Connector row in Dynamics so people there see the same status.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.errors import ConnectorError, NotFound, Problem
from bot.storage.base import Connection, ConnectionStatus, RunRecord, Store
from bot.storage.helpers import update_connection
from bot.sync.on_demand import Refusal, RunRequest
from bot.sync.ports import Clock, DataverseFactory, SystemClock
from bot.sync.records import update_connector_status
from bot.sync.scheduler import Scheduler

__all__ = ["Refusal", "RunRequest", "SyncService"]

log = logging.getLogger(__name__)


class SyncService:
    def __init__(
        self,
        store: Store,
        scheduler: Scheduler,
        *,
        dataverse_factory: DataverseFactory | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._scheduler = scheduler
        self._dataverse_factory = dataverse_factory
        self._clock = clock or SystemClock()

    async def run_now(self, connection_id: str, requested_by: str) -> RunRequest:
        """Start a run (or join the one under way); refused when paused, disconnected or over the
        plan's daily allowance of on-demand runs. `requested_by` is the person's AAD id (for the log)."""
        return await self._scheduler.request_run(connection_id, requested_by=requested_by)

    async def schedule_first_run(self, connection_id: str) -> None:
        """Right after setup: the first run starts within seconds."""
        await self._scheduler.schedule_first_run(connection_id)

    async def pause(self, connection_id: str, by: str, reason: str = "") -> Connection:
        """Stop scheduled runs until resumed. A run under way finishes; nothing follows it."""
        now = self._clock.now()
        why = reason or (f"Paused by {by}" if by else "Paused")

        def apply(c: Connection) -> Connection:
            if c.status == ConnectionStatus.PAUSED:
                return c
            return c.model_copy(
                update={
                    "status": ConnectionStatus.PAUSED,
                    "status_reason": why,
                    "next_run_at": None,
                    "updated_at": now,
                }
            )

        connection = await self._update(connection_id, apply)
        await self._store.unschedule(connection_id)
        await self._tell_dynamics(connection)
        return connection

    async def resume(self, connection_id: str, by: str) -> Connection:
        """Back to the schedule: the next run is due at once (it catches up on what changed meanwhile).
        Only a paused connection resumes; one that needs reconnecting stays as it is."""
        now = self._clock.now()

        def apply(c: Connection) -> Connection:
            if c.status != ConnectionStatus.PAUSED:
                return c
            return c.model_copy(
                update={
                    "status": ConnectionStatus.ACTIVE,
                    "status_reason": "",
                    "next_run_at": now,
                    "updated_at": now,
                }
            )

        connection = await self._update(connection_id, apply)
        if connection.status == ConnectionStatus.ACTIVE:
            await self._store.schedule(connection_id, now)
            log.info("connection resumed", extra={"connection_id": connection_id, "by": by})
        await self._tell_dynamics(connection)
        return connection

    async def next_run_at(self, connection: Connection) -> datetime | None:
        """When the next scheduled run is due; None when paused, disconnected or waiting on a reconnect."""
        if connection.status != ConnectionStatus.ACTIVE:
            return None
        due = await self._store.get_due(connection.id)
        return due or connection.next_run_at

    async def history(self, connection_id: str, n: int = 10) -> list[RunRecord]:
        """The last `n` runs, newest first."""
        return await self._store.list_runs(connection_id, limit=n)

    async def running(self, connection_id: str) -> RunRecord | None:
        """The run under way for this connection (in any process), if any."""
        return await self._scheduler.find_running(connection_id)

    async def _update(self, connection_id: str, apply: Callable[[Connection], Connection]) -> Connection:
        connection = await update_connection(self._store, connection_id, apply)
        if connection is None:
            raise NotFound(Problem.CONNECTION_GONE)
        return connection

    async def _tell_dynamics(self, connection: Connection) -> None:
        if self._dataverse_factory is None or not connection.dataverse_api_url:
            return
        try:
            await update_connector_status(self._dataverse_factory(connection), connection)
        except ConnectorError as exc:
            log.warning("could not write the status to the Connector row: %s", type(exc).__name__)
