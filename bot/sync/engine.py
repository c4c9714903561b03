"""One run of one connection: Xero -> mapping -> Dataverse, and the report of what happened.

    load the connection -> read Xero (Organisation, then Accounts, TaxRates, BrandingThemes and
    TrackingCategories if switched on: at most 5 calls; bot.sync.pull)
    -> map -> compare with the fingerprints of what was last written -> upsert only what changed
    (UpsertMultiple, 1,000 rows a call) -> save the fingerprints of what landed -> run report,
    connection state, the Connector row in Dynamics -> tell the notifier

Accounts are read incrementally (If-Modified-Since the high-water mark of the last good run) except on
a full pass: the first run and then at least once every `full_pass_every`, so archivals and deletions
that do not bump UpdatedDateUTC are seen. Tax rates and branding themes have no such filter, so each
run sees them whole, and so are tracking categories (archived ones included). A record that disappeared
from a complete list is marked inactive, never deleted. Entities switched off in the settings are
neither read nor written (the report lists them in `skipped`); what they left in Dynamics stays.

The store only ever receives ids, hashes, counts, times and scrubbed error summaries.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from bot import metrics
from bot.errors import StoreError
from bot.storage.base import (
    Connection,
    ConnectionStatus,
    FailureKind,
    RecordFailure,
    RunEventKind,
    RunOutcome,
    RunRecord,
    RunStage,
    RunTrigger,
    Store,
    TokenKind,
)
from bot.storage.helpers import update_connection
from bot.sync.failures import (
    RunFailure,
    attention_after_run,
    describe,
    record_fields,
    record_refusal,
    sign_in_replaced,
    unmark,
    xero_sign_in_refused,
)
from bot.sync.fingerprint import ChangeKind, plan_changes
from bot.sync.ledger import record_writes
from bot.sync.mapping import (
    TABLE_OF,
    Entity,
    Row,
    inactive_row,
    key_column,
    row_key,
    row_values,
)
from bot.sync.ports import AttentionDetail, AttentionReason, Clock, DataverseFactory, Notifier, SystemClock
from bot.sync.pull import SYNC_ORDER, high_water, read_xero, skipped_entities
from bot.sync.records import outcome_data, update_connector_run, upsert_connector_record
from bot.sync.run_work import MAX_FAILURES_KEPT, RunWork, provider_of
from bot.sync.tables import Table
from bot.sync.xero import XeroClient

log = logging.getLogger(__name__)

# A stage after each entity written (categories and options make one stage).
_WROTE = {
    Entity.ACCOUNTS: RunStage.WROTE_ACCOUNTS,
    Entity.TAX_RATES: RunStage.WROTE_TAX_RATES,
    Entity.BRANDING_THEMES: RunStage.WROTE_BRANDING_THEMES,
    Entity.TRACKING_OPTIONS: RunStage.WROTE_TRACKING,
}


class SyncEngine:
    def __init__(
        self,
        store: Store,
        xero: XeroClient,
        dataverse_factory: DataverseFactory,
        notifier: Notifier,
        clock: Clock | None = None,
        *,
        full_pass_every: timedelta = timedelta(hours=24),
        day_limit_warning: int = 500,
        notifier_timeout: float = 10.0,
        outcome_words: Callable[[RunRecord], str] = outcome_data,  # ports.OutcomeWords
    ) -> None:
        self._store = store
        self._xero = xero
        self._dataverse_factory = dataverse_factory
        self._notifier = notifier
        self.clock: Clock = clock or SystemClock()
        self._full_pass_every = full_pass_every
        self._day_limit_warning = day_limit_warning
        self._notifier_timeout = notifier_timeout
        self._outcome_words = outcome_words

    def wants_full_pass(self, connection: Connection, now: datetime) -> bool:
        if connection.accounts_modified_since is None or connection.last_full_pass_at is None:
            return True
        return now - connection.last_full_pass_at >= self._full_pass_every

    async def run(
        self,
        connection_id: str,
        trigger: RunTrigger,
        *,
        run_id: str | None = None,
        next_run_at: datetime | None = None,
        full_pass: bool | None = None,
    ) -> RunRecord:
        """Run once and return the report (also saved in the store). Never raises for a failed sync:
        the report says what failed. Paused, disconnected or unknown connections are SKIPPED (not saved)."""
        now = self.clock.now()
        record = RunRecord(
            id=run_id or uuid.uuid4().hex, connection_id=connection_id, trigger=trigger, started_at=now
        )
        connection = await self._store.get_connection(connection_id)
        if connection is None or connection.status != ConnectionStatus.ACTIVE:
            update = {
                "outcome": RunOutcome.SKIPPED,
                "finished_at": now,
                "failure_kind": FailureKind.CONNECTION_INACTIVE,
                "failure_detail": "gone" if connection is None else connection.status.value,
            }
            return record.model_copy(update=update)
        full = self.wants_full_pass(connection, now) if full_pass is None else full_pass
        record = record.model_copy(update={"full_pass": full})
        await self._close_interrupted(connection_id, now)
        await self._store.save_run(record)
        await self._announce(record, RunEventKind.STARTED)
        await self._tell("run_started", lambda: self._notifier.run_started(connection, record))
        record = record.model_copy(update={"skipped": skipped_entities(connection)})
        work = RunWork(connection=connection, record=record, xero=self._xero.for_run())
        try:
            await self._sync(work, full)
        except asyncio.CancelledError:
            work.failure = RunFailure(FailureKind.INTERRUPTED)
            work.interrupted = True
            await asyncio.shield(self._finish(work, full, next_run_at))
            raise
        except Exception as exc:
            work.failure = describe(exc)
            if work.failure.expected:
                f = work.failure
                log.warning("run %s of %s failed: %s %s %s", record.id, connection_id, f.kind, f.provider, f.code)
            else:
                log.exception("run %s of %s failed unexpectedly", record.id, connection_id)
        return await self._finish(work, full, next_run_at)

    # ---- the sync itself -------------------------------------------------------------------------

    async def _sync(self, work: RunWork, full: bool) -> None:
        connection = work.connection
        work.xero_tokens_at_start = await self._store.get_tokens(connection.id, TokenKind.XERO)
        since = None if full else connection.accounts_modified_since
        data = await read_xero(work.xero, connection, modified_since=since)
        work.organisation = data.organisation
        await self._progress(work, RunStage.READ_XERO)

        work.dv = self._dataverse_factory(connection)
        work.connector_row_id = connection.dataverse_connector_row_id or await upsert_connector_record(
            work.dv, connection
        )
        for entity in SYNC_ORDER:
            if entity not in data.enabled:
                continue  # switched off: not read, and its rows in Dynamics stay as they are
            rows = data.rows(entity, work.connector_row_id)
            failed = await self._write(work, entity, rows, complete=data.complete(entity), verify=full)
            if entity is Entity.ACCOUNTS:
                work.modified_since = high_water(
                    connection.accounts_modified_since, data.accounts, failed, ceiling=work.record.started_at
                )
            if entity in _WROTE:
                await self._progress(work, _WROTE[entity])

    async def _write(
        self, work: RunWork, entity: Entity, rows: dict[str, Row], *, complete: bool, verify: bool
    ) -> set[str]:
        """Upsert what changed for one entity; returns the Xero keys that failed. `complete`: `rows` is
        all Xero has (missing keys are deactivated); `verify`: check first which rows Dynamics still has."""
        assert work.dv is not None
        table, cid, connection_id = TABLE_OF[entity], work.connector_row_id, work.connection.id
        previous = await self._store.get_fingerprints(connection_id, entity.value)
        if verify and previous:
            previous = await self._still_in_dynamics(work, table, previous)
        changes = plan_changes(
            rows, previous, complete=complete, inactive=lambda k: inactive_row(table, cid, k)
        )
        work.tally(entity, "unchanged", changes.unchanged)
        for kind in ChangeKind:
            work.tally(entity, kind.value, 0)
        work.tally(entity, "failed", 0)
        if not changes.changes:
            return set()
        results = await work.dv.upsert_many(
            table, [(row_key(table, cid, change.key), change.row) for change in changes.changes]
        )
        landed = dict(previous)
        written: dict[str, str] = {}
        failed: dict[str, str] = {}
        refusals: dict[str, str] = {}
        for change, result in zip(changes.changes, results, strict=True):
            if result.ok:
                landed[change.key] = change.fingerprint
                written[change.key] = change.kind.value
                work.tally(entity, change.kind.value)
                continue
            refusal, reason = record_refusal(result.error, result.status, row_values(change.row), result.code)
            failed[change.key], refusals[change.key] = reason, refusal
            work.tally(entity, "failed")
            if len(work.failures) < MAX_FAILURES_KEPT:
                failure = RecordFailure(entity=entity.value, key=change.key, reason=reason, refusal=refusal)
                work.failures.append(failure)
        # Only what really landed: a failed row keeps its old hash, so the next run tries it again.
        await self._store.put_fingerprints(connection_id, entity.value, landed)
        await record_writes(
            self._store,
            connection_id,
            entity.value,
            work.record.id,
            self.clock.now(),
            written=written,
            failed=failed,
            refusals=refusals,
        )
        return set(failed)

    async def _still_in_dynamics(
        self, work: RunWork, table: Table, previous: dict[str, str]
    ) -> dict[str, str]:
        """The fingerprints of rows that are still in Dynamics. A row someone deleted there is written
        again by this complete pass instead of being skipped forever as "unchanged"."""
        assert work.dv is not None
        column = key_column(table)
        rows = await work.dv.rows_for_connector(table, work.connector_row_id, [column])
        present = {str(row.get(column)) for row in rows}
        missing = [key for key in previous if key not in present]
        if missing:
            log.info(
                "%d %s row(s) are missing in Dynamics; writing them again", len(missing), table.logical_name
            )
        return {key: digest for key, digest in previous.items() if key in present}

    # ---- the end of a run ------------------------------------------------------------------------

    async def _finish(self, work: RunWork, full: bool, next_run_at: datetime | None) -> RunRecord:
        now = self.clock.now()
        failure = work.failure
        failed_records = sum(c.get("failed", 0) for c in work.counts.values())
        outcome = (
            RunOutcome.FAILED if failure else RunOutcome.PARTIAL if failed_records else RunOutcome.SUCCEEDED
        )
        tenant = work.connection.xero_tenant_id
        day_remaining = work.xero.day_remaining(tenant)
        record = work.snapshot().model_copy(
            update={
                "finished_at": now,
                "outcome": outcome,
                **record_fields(failure),
                "xero_day_remaining": day_remaining,
                "failed_provider": provider_of(failure.provider) if failure else None,
            }
        )
        new_status = failure.status if failure else None
        next_run = None if new_status else next_run_at
        before = work.connection

        def apply(c: Connection) -> Connection:
            update: dict[str, object] = {
                "last_run_at": record.started_at,
                "last_outcome": outcome.value,
                "updated_at": now,
                "next_run_at": next_run if c.status == ConnectionStatus.ACTIVE else None,
            }
            if work.interrupted:
                pass  # a stopped worker says nothing about the connection's health
            elif outcome == RunOutcome.FAILED:
                update["consecutive_failures"] = c.consecutive_failures + 1
            else:
                update["consecutive_failures"] = 0
                update["last_success_at"] = now
                if full and c.sync_accounts:
                    update["last_full_pass_at"] = record.started_at
            if work.modified_since is not None:
                update["accounts_modified_since"] = work.modified_since
            if day_remaining is not None:
                update["xero_day_remaining"] = day_remaining
            if work.connector_row_id and not c.dataverse_connector_row_id:
                update["dataverse_connector_row_id"] = work.connector_row_id
            if work.organisation is not None:
                update["xero_org_name"] = work.organisation.name or c.xero_org_name
                update["xero_timezone"] = work.organisation.iana_timezone or c.xero_timezone
            if new_status is not None and c.status == ConnectionStatus.ACTIVE:
                update["status"] = new_status
                update["status_reason"] = failure.kind.value if failure else ""
                update["next_run_at"] = None
            return c.model_copy(update=update)

        after = await update_connection(self._store, work.connection.id, apply) or before
        if xero_sign_in_refused(failure, after) and await self._xero_tokens_replaced(work):
            # A reconnect saves its tokens before it reactivates the connection: so reading them after
            # our write sees a reconnect that reactivated before it, and a later one undoes our mark itself.
            reason, failure = failure.kind.value, sign_in_replaced(failure)
            work.failure = failure
            record = record.model_copy(update=record_fields(failure))
            after = await update_connection(self._store, before.id, unmark(reason, next_run_at, now)) or after
        # The Connector row shows the connection as it is now (status, next run) and this run.
        await self._write_connector_run(work, after, record, after.next_run_at)
        record = record.model_copy(update={"dataverse_calls": work.dv.calls if work.dv else 0})
        await self._store.save_run(record)
        await self._announce(record, RunEventKind.FINISHED)
        metrics.run_finished(record.outcome.value, record.trigger, record.started_at, record.finished_at)
        await self._tell("run_finished", lambda: self._notifier.run_finished(after, record))
        await self._attention(before, after, record, failure)
        return record

    async def _write_connector_run(
        self, work: RunWork, connection: Connection, record: RunRecord, next_run: datetime | None
    ) -> None:
        """The Connector row shows the last run in Dynamics; best effort (the run is over either way)."""
        failure = work.failure
        if failure is not None and (failure.provider == "dynamics" or work.interrupted):
            return  # Dynamics is the problem, or we are shutting down: do not wait on it
        if work.dv is None and failure is not None and record.dataverse_calls == 0:
            # Xero failed before Dynamics was touched: still say so in Dynamics.
            try:
                work.dv = self._dataverse_factory(connection)
            except Exception:
                log.warning("could not build a Dataverse client to record the run", exc_info=True)
                return
        if work.dv is None:
            return
        try:
            await update_connector_run(work.dv, connection, record, next_run, self._outcome_words(record))
        except Exception as exc:
            log.warning("could not write the run to the Connector row: %s", type(exc).__name__)

    async def _xero_tokens_replaced(self, work: RunWork) -> bool:
        return await self._store.get_tokens(work.connection.id, TokenKind.XERO) != work.xero_tokens_at_start

    async def _attention(
        self, before: Connection, after: Connection, record: RunRecord, failure: RunFailure | None
    ) -> None:
        for reason, detail in attention_after_run(before, after, record, failure, self._day_limit_warning):
            await self._tell("needs_attention", _bind(self._notifier.needs_attention, after, reason, detail))

    async def _close_interrupted(self, connection_id: str, now: datetime) -> None:
        """Runs still RUNNING while we hold the lease were cut off (a worker died): say so in history."""
        for run in await self._store.list_runs(connection_id, limit=5):
            if run.outcome == RunOutcome.RUNNING:
                closed = run.model_copy(
                    update={
                        "outcome": RunOutcome.FAILED,
                        "finished_at": now,
                        "failure_kind": FailureKind.INTERRUPTED,
                    }
                )
                await self._store.save_run(closed)
                await self._announce(closed, RunEventKind.FINISHED)

    async def _announce(self, record: RunRecord, kind: RunEventKind) -> None:
        """Append to the run-event feed, which the bot processes read to post the cards of runs they did
        not execute (`RunWatcher`). Best effort: a lost event costs a card, never the run."""
        try:
            await self._store.append_run_event(record.connection_id, record.id, kind)
        except StoreError:
            log.warning("could not append the %s event of run %s", kind.value, record.id, exc_info=True)

    # ---- telling people --------------------------------------------------------------------------

    async def _progress(self, work: RunWork, stage: RunStage) -> None:
        snapshot = work.snapshot()
        await self._tell(
            "run_progress", lambda: self._notifier.run_progress(work.connection, snapshot, stage)
        )

    async def _tell(self, what: str, call: Callable[[], Awaitable[None]]) -> None:
        """A notifier that fails or hangs must never fail the run."""
        try:
            await asyncio.wait_for(call(), timeout=self._notifier_timeout)
        except Exception:
            log.warning("notifier.%s failed; the run goes on", what, exc_info=True)


def _bind(
    method: Callable[[Connection, AttentionReason, AttentionDetail], Awaitable[None]],
    connection: Connection,
    reason: AttentionReason,
    detail: AttentionDetail,
) -> Callable[[], Awaitable[None]]:
    return lambda: method(connection, reason, detail)
