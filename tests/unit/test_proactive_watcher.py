"""The run watcher: reports other processes' runs once, after a grace period, with the alerts they imply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.errors import AuthError, PermissionDenied, StoreError
from bot.storage.base import (
    Connection,
    ConnectionStatus,
    Provider,
    RunEvent,
    RunEventKind,
    RunOutcome,
    RunRecord,
)
from bot.storage.sqlite import SqliteStore
from bot.sync.failures import describe
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.teams.notifier import TeamsNotifier
from bot.teams.proactive import ProactiveSender
from bot.teams.run_watcher import RunWatcher
from bot.teams.runcards import Claim, RunCardBook

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class _NoAdapter:
    async def continue_conversation(self, *_args: object) -> None:
        raise AssertionError("nothing is sent in these tests")


class RecordingNotifier(TeamsNotifier):
    """The real claims; records what would be posted instead of posting it."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__(ProactiveSender(_NoAdapter(), store, ""), RunCardBook(store, clock=lambda: NOW))
        self.finished: list[str] = []
        self.started: list[str] = []
        self.alerts: list[AttentionReason] = []

    async def run_started(self, connection: Connection, run: RunRecord) -> None:
        if (await self.book.claim_start(connection.id, run.id)).claimed:
            self.started.append(run.id)

    async def report_finished(self, connection: Connection, run: RunRecord) -> Claim:
        claim = await self.book.claim_finish(connection.id, run.id, connection.xero_timezone)
        if claim.claimed:
            self.finished.append(run.id)
        return claim

    async def needs_attention(
        self, connection: Connection, reason: AttentionReason, detail: AttentionDetail
    ) -> None:
        self.alerts.append(reason)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


def connection(**update: object) -> Connection:
    base = Connection(
        id="c1",
        name="Acme",
        teams_tenant_id="t",
        conversation_key="msteams:a:1",
        created_by_aad_id="u",
        xero_tenant_id="x",
        xero_timezone="Pacific/Auckland",
    )
    return base.model_copy(update=update)


def run(n: int, *, ago: float, outcome: RunOutcome = RunOutcome.SUCCEEDED, **update: object) -> RunRecord:
    started = NOW - timedelta(seconds=ago)
    finished = None if outcome == RunOutcome.RUNNING else started + timedelta(seconds=2)
    return RunRecord(
        id=f"r{n}",
        connection_id="c1",
        trigger="schedule",
        started_at=started,
        finished_at=finished,
        outcome=outcome,
        **update,  # type: ignore[arg-type]
    )


async def watch(
    store: SqliteStore, current: Connection, runs: list[RunRecord]
) -> tuple[RunWatcher, RecordingNotifier]:
    if await store.get_connection(current.id) is None:
        await store.create_connection(current)
    for record in runs:
        await store.save_run(record)
    notifier = RecordingNotifier(store)
    return RunWatcher(store, notifier, grace_seconds=5, clock=lambda: NOW), notifier


async def test_reports_each_run_once_after_the_grace_period(store: SqliteStore) -> None:
    watcher, notifier = await watch(
        store,
        connection(),
        [
            run(1, ago=120),
            run(2, ago=60, outcome=RunOutcome.RUNNING),
            run(3, ago=4, outcome=RunOutcome.FAILED),
        ],
    )
    # r3 finished 2 s ago (within the grace): left to the process that ran it, for now.
    assert await watcher.scan_once() == 2
    assert notifier.finished == ["r1"]
    assert notifier.started == ["r2"]
    assert await watcher.scan_once() == 0
    # Another process's watcher finds everything claimed.
    other = RunWatcher(store, notifier, grace_seconds=5, clock=lambda: NOW)
    assert await other.scan_once() == 0


async def test_old_runs_are_not_reported(store: SqliteStore) -> None:
    watcher, notifier = await watch(store, connection(), [run(1, ago=3 * 3600)])
    assert await watcher.scan_once() == 0
    assert notifier.finished == []


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            AuthError("invalid_grant", reconnect_required=True, provider="xero"),
            AttentionReason.XERO_RECONNECT,
        ),
        (
            AuthError("invalid_grant", reconnect_required=True, provider="dynamics"),
            AttentionReason.DYNAMICS_RECONNECT,
        ),
        (
            PermissionDenied("AuthenticationUnsuccessful", provider="xero"),
            AttentionReason.TENANT_DISCONNECTED,
        ),
    ],
)
async def test_a_run_that_left_the_connection_needing_a_reconnect(
    store: SqliteStore, error: Exception, reason: AttentionReason
) -> None:
    failure = describe(error)
    assert failure.attention is reason  # what the engine itself would have raised
    current = connection(
        status=ConnectionStatus.NEEDS_RECONNECTION, status_reason=failure.kind, consecutive_failures=1
    )
    # Stored as the engine stores it: the error, and the attention it calls for.
    failed = run(1, ago=60, outcome=RunOutcome.FAILED, failure_kind=failure.kind, attention=failure.attention)
    watcher, notifier = await watch(store, current, [failed])
    await watcher.scan_once()
    assert notifier.alerts == [reason]


async def test_the_reconnect_alert_follows_the_stored_attention_not_the_error_text(
    store: SqliteStore,
) -> None:
    # An error that names Dynamics 365 (a record refusal quoted in it, say) on a run that needs Xero.
    error = "The Dynamics 365 sign-in is fine; Xero's is not."
    current = connection(
        status=ConnectionStatus.NEEDS_RECONNECTION, status_reason=error, consecutive_failures=1
    )
    failed = run(
        1,
        ago=60,
        outcome=RunOutcome.FAILED,
        error=error,
        attention=AttentionReason.XERO_RECONNECT,
        failed_provider=Provider.XERO,
    )
    watcher, notifier = await watch(store, current, [failed])
    await watcher.scan_once()
    assert notifier.alerts == [AttentionReason.XERO_RECONNECT]


async def test_a_run_stored_before_attention_was_recorded_raises_no_reconnect(store: SqliteStore) -> None:
    # Old records load with attention None: no guess from their text.
    error = "The Dynamics 365 sign-in is no longer valid. Reconnect Dynamics 365 to resume syncing."
    current = connection(
        status=ConnectionStatus.NEEDS_RECONNECTION, status_reason=error, consecutive_failures=1
    )
    watcher, notifier = await watch(store, current, [run(1, ago=60, outcome=RunOutcome.FAILED, error=error)])
    await watcher.scan_once()
    assert notifier.alerts == []


async def test_the_third_failure_in_a_row(store: SqliteStore) -> None:
    current = connection(consecutive_failures=3)
    runs = [
        run(n, ago=300 - 60 * n, outcome=RunOutcome.FAILED, error="Xero answered with an error")
        for n in range(3)
    ]
    watcher, notifier = await watch(store, current, runs)
    await watcher.scan_once()
    assert notifier.alerts == [AttentionReason.REPEATED_FAILURES]


async def test_the_daily_allowance_crossing_the_warning_level(store: SqliteStore) -> None:
    runs = [run(1, ago=120, xero_day_remaining=520), run(2, ago=60, xero_day_remaining=480)]
    watcher, notifier = await watch(store, connection(), runs)
    await watcher.scan_once()
    assert notifier.alerts == [AttentionReason.XERO_DAILY_LIMIT]  # once: at the crossing, not for r1


async def test_a_changed_xero_timezone(store: SqliteStore) -> None:
    watcher, notifier = await watch(store, connection(), [run(1, ago=120)])
    await watcher.scan_once()
    await store.save_connection(
        (await store.get_connection("c1")).model_copy(update={"xero_timezone": "Europe/London"})
    )  # type: ignore[union-attr]
    await store.save_run(run(2, ago=60))
    await watcher.scan_once()
    assert notifier.alerts == [AttentionReason.TIMEZONE_MISMATCH]


async def test_disconnected_connections_are_left_alone(store: SqliteStore) -> None:
    watcher, notifier = await watch(store, connection(status=ConnectionStatus.DISCONNECTED), [run(1, ago=60)])
    assert await watcher.scan_once() == 0
    assert notifier.finished == []


# ---- the run-event feed ----------------------------------------------------------------------------


class CountingStore:
    """The store, counting the calls the feed design is about; `fail_reads` makes feed reads fail."""

    def __init__(self, inner: SqliteStore) -> None:
        self._inner = inner
        self.listed = 0
        self.reads = 0
        self.fail_reads = 0

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        self.listed += 1
        return await self._inner.list_connections(conversation_key)

    async def read_run_events(self, after: str = "", limit: int = 100) -> tuple[list[RunEvent], str]:
        self.reads += 1
        if self.fail_reads:
            self.fail_reads -= 1
            raise StoreError("the store is away")
        return await self._inner.read_run_events(after, limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


async def finished_elsewhere(store: SqliteStore, record: RunRecord) -> None:
    """What a worker's engine leaves: the record, then the event."""
    await store.save_run(record)
    await store.append_run_event(record.connection_id, record.id, RunEventKind.FINISHED)


async def test_the_watcher_follows_the_feed_without_listing_connections(store: SqliteStore) -> None:
    await store.create_connection(connection())
    for i in range(2, 30):  # connections with nothing going on cost the watcher nothing
        await store.create_connection(connection(id=f"idle{i}", conversation_key=f"msteams:a:{i}"))
    counting = CountingStore(store)
    notifier = RecordingNotifier(store)
    watcher = RunWatcher(counting, notifier, poll_seconds=0.01, grace_seconds=5, clock=lambda: NOW)  # type: ignore[arg-type]
    await watcher.start()
    try:
        await finished_elsewhere(store, run(1, ago=60))
        for _ in range(500):
            if notifier.finished and counting.reads > 20:
                break
            await asyncio.sleep(0.01)
    finally:
        await watcher.stop()
    assert notifier.finished == ["r1"]
    assert counting.reads > 20
    assert counting.listed == 0


async def test_an_event_within_the_grace_waits_and_the_ones_after_it_too(store: SqliteStore) -> None:
    now = [NOW]
    await store.create_connection(connection())
    notifier = RecordingNotifier(store)
    watcher = RunWatcher(store, notifier, grace_seconds=5, clock=lambda: now[0])
    await store.save_run(run(1, ago=2, outcome=RunOutcome.RUNNING))
    await store.append_run_event("c1", "r1", RunEventKind.STARTED)
    await finished_elsewhere(store, run(2, ago=60))
    assert await watcher.poll_once() == 0
    assert notifier.started == notifier.finished == []
    now[0] = NOW + timedelta(seconds=4)
    assert await watcher.poll_once() == 2
    assert (notifier.started, notifier.finished) == (["r1"], ["r2"])
    assert await watcher.poll_once() == 0


async def test_a_restarted_watcher_catches_up_from_the_feed_within_the_lookback(store: SqliteStore) -> None:
    await store.create_connection(connection())
    await finished_elsewhere(store, run(1, ago=3 * 3600))  # before the lookback
    await finished_elsewhere(store, run(2, ago=60))  # while no bot was up
    notifier = RecordingNotifier(store)
    watcher = RunWatcher(store, notifier, grace_seconds=5, clock=lambda: NOW)
    assert await watcher.poll_once() == 1
    assert notifier.finished == ["r2"]
    # Another bot process reads the same feed and finds it reported.
    other = RunWatcher(store, notifier, grace_seconds=5, clock=lambda: NOW)
    assert await other.poll_once() == 0
    assert notifier.finished == ["r2"]


async def test_a_failed_read_keeps_the_cursor(store: SqliteStore) -> None:
    await store.create_connection(connection())
    counting = CountingStore(store)
    notifier = RecordingNotifier(store)
    watcher = RunWatcher(counting, notifier, grace_seconds=5, clock=lambda: NOW)  # type: ignore[arg-type]
    await finished_elsewhere(store, run(1, ago=60))
    counting.fail_reads = 1
    with pytest.raises(StoreError):
        await watcher.poll_once()
    assert await watcher.poll_once() == 1
    assert notifier.finished == ["r1"]
