"""Token races: many concurrent token users and runs while the user reconnects Xero at the same moment.

Xero rotates the refresh token on every refresh, and a reconnect replaces the whole token set (a new
grant). If a refresh that started with the old tokens finishes after the reconnect saved the new ones,
the product must not write the old grant's tokens over the new ones, and a refusal of the old grant
must not undo the reconnect ("needs reconnection" again right after the user reconnected). The moment
is made exact, not hoped for: Xero's token endpoint is slowed down, and the reconnect is saved while
the sandbox has a refresh request in hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from bot.errors import AuthError
from bot.storage.base import Connection, ConnectionStatus, RunOutcome, Store
from bot.storage.helpers import update_connection
from bot.sync.engine import SyncEngine
from bot.sync.ports import AttentionReason
from bot.sync.xero_auth import XeroTokenSet
from bot.sync.xero_tokens import XeroTokenProvider
from cards.failure_words import run_error_words
from sandbox.xero.seed import DEMO_EMAIL, NZ_TENANT_ID
from tests.integration.harness import Harness, open_harness

pytestmark = pytest.mark.timeout(60)
XERO_ACCESS_LIFETIME = 30 * 60


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness


def family_of(h: Harness, refresh_token: str) -> str:
    return str(h.xero.identity.refresh_tokens[refresh_token].family_id)


def refresh_requests(h: Harness) -> int:
    return sum(
        1
        for r in h.xero.requests
        if r.path == "/connect/token" and r.form.get("grant_type") == "refresh_token"
    )


async def refresh_in_flight(h: Harness, before: int) -> None:
    """Until Xero's token endpoint has a refresh request in hand (it answers after its latency)."""
    for _ in range(400):
        if refresh_requests(h) > before:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("no refresh reached Xero")


async def expire_stored(h: Harness, connection_id: str) -> None:
    """The stored access token has expired, by every clock (the providers' and the sandbox's)."""
    tokens = await h.runtime.xero_tokens.load(connection_id)
    assert tokens is not None
    past = min(datetime.now(UTC), h.clock.now()) - timedelta(minutes=5)
    await h.runtime.xero_tokens.save(connection_id, tokens.model_copy(update={"expires_at": past}))
    h.xero.expire_access_tokens()


async def reconnect(h: Harness, connection_id: str, tokens: XeroTokenSet) -> None:
    """The end of a Xero reconnect, as bot/dialogs does it: save the proven tokens (xero_step.py), then
    reactivate a connection that was waiting for it (flow.py, _finish_reconnect)."""
    await h.runtime.xero_tokens.save(connection_id, tokens)

    def reactivate(current: Connection) -> Connection:
        if current.status is not ConnectionStatus.NEEDS_RECONNECTION:
            return current
        return current.model_copy(update={"status": ConnectionStatus.ACTIVE, "status_reason": ""})

    await update_connection(h.store, connection_id, reactivate)


def reconnect_tokens(h: Harness) -> XeroTokenSet:
    """What the reconnect's code exchange gives: a new grant for the same organisation."""
    body = h.xero.issue_tokens(DEMO_EMAIL, tenant_ids=[NZ_TENANT_ID])
    now = datetime.now(UTC)
    return XeroTokenSet(
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        expires_at=max(now, h.clock.now()) + timedelta(seconds=body["expires_in"]),
        refresh_issued_at=now,
        scope=body["scope"],
    )


async def test_concurrent_refreshes_and_a_reconnect_keep_the_reconnects_tokens(h: Harness) -> None:
    connection = await h.connect()
    processes = [
        h.runtime.xero_tokens,
        *(XeroTokenProvider(h.store, h.runtime.cipher, h.runtime.xero_oauth) for _ in range(2)),
    ]
    await expire_stored(h, connection.id)
    before = refresh_requests(h)
    h.xero.set_latency(0.3)
    # Twelve callers in three "processes" want a token at once; the stored one has expired.
    callers = [asyncio.create_task(p.access_token(connection.id)) for p in processes for _ in range(4)]
    await refresh_in_flight(h, before)
    fresh = reconnect_tokens(h)
    await reconnect(h, connection.id, fresh)
    results = await asyncio.gather(*callers, return_exceptions=True)
    h.xero.set_latency(0)

    assert [r for r in results if isinstance(r, BaseException)] == []
    stored = await h.runtime.xero_tokens.load(connection.id)
    assert stored is not None
    assert family_of(h, stored.refresh_token) == family_of(h, fresh.refresh_token), (
        "a refresh of the old grant was written over the reconnect's tokens"
    )
    # And what is stored works: Xero accepts it (a run refreshes it when it expires).
    h.clock.advance(XERO_ACCESS_LIFETIME + 60)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error


async def test_a_reconnect_during_a_run_whose_old_grant_was_revoked_is_not_undone(h: Harness) -> None:
    """The user revoked the app at Xero, then reconnects while a run is refreshing the dead grant."""
    connection = await h.connect()
    h.xero.revoke_user_tokens(DEMO_EMAIL)
    h.clock.advance(XERO_ACCESS_LIFETIME + 60)
    before = refresh_requests(h)
    h.xero.set_latency(0.3)
    run_task = asyncio.create_task(h.run(connection.id))
    await refresh_in_flight(h, before)
    fresh = reconnect_tokens(h)
    await reconnect(h, connection.id, fresh)
    run = await run_task
    h.xero.set_latency(0)

    stored = await h.runtime.xero_tokens.load(connection.id)
    assert stored is not None
    assert stored.refresh_token == fresh.refresh_token or family_of(h, stored.refresh_token) == family_of(
        h, fresh.refresh_token
    )
    # The run may fail (its grant died under it) but must not leave the connection asking for a
    # reconnect the user has just done: the next run works with no one doing anything.
    after = await h.connection(connection.id)
    assert after.status is ConnectionStatus.ACTIVE, (run.outcome, run.error, after.status_reason)
    again = await h.run(connection.id)
    assert again.outcome == RunOutcome.SUCCEEDED, again.error


class ReconnectBeforeTheRunsEnd:
    """The store, except that the run's write of "needs reconnection" first waits for a whole reconnect.

    The narrowest order: Xero refused the old grant, then the user's reconnect saved new tokens and found
    the connection still active (nothing to reactivate), and only then does the run record its failure."""

    def __init__(self, h: Harness, connection_id: str, tokens: XeroTokenSet) -> None:
        self._h, self._connection_id, self._tokens = h, connection_id, tokens
        self.reconnected = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._h.store, name)

    async def save_connection(self, connection: Connection) -> Connection:
        if connection.status is ConnectionStatus.NEEDS_RECONNECTION and not self.reconnected:
            self.reconnected = True
            await reconnect(self._h, self._connection_id, self._tokens)
        return await self._h.store.save_connection(connection)


async def test_a_reconnect_between_the_refusal_and_the_end_of_the_run_is_not_undone(h: Harness) -> None:
    connection = await h.connect()
    h.xero.revoke_user_tokens(DEMO_EMAIL)
    h.clock.advance(XERO_ACCESS_LIFETIME + 60)
    store = ReconnectBeforeTheRunsEnd(h, connection.id, reconnect_tokens(h))
    engine = SyncEngine(cast(Store, store), h.runtime.xero, h.runtime.dataverse_factory, h.notifier, h.clock)

    next_run = h.clock.now() + timedelta(hours=1)
    run = await engine.run(connection.id, "schedule", next_run_at=next_run)

    assert store.reconnected, "the run never tried to mark the connection: the test proves nothing"
    assert run.outcome == RunOutcome.FAILED
    assert "Reconnect Xero" not in run_error_words(run), run.failure_kind
    after = await h.connection(connection.id)
    assert after.status is ConnectionStatus.ACTIVE, after.status_reason
    assert after.next_run_at == next_run  # scheduled as if nothing had been marked
    assert AttentionReason.XERO_RECONNECT not in h.notifier.attention()
    again = await h.run(connection.id)
    assert again.outcome == RunOutcome.SUCCEEDED, again.error


async def test_a_refused_grant_with_no_reconnect_still_asks_for_one(h: Harness) -> None:
    """The control case: the stored grant is revoked and nobody reconnects: needs reconnection, once."""
    connection = await h.connect()
    h.xero.revoke_user_tokens(DEMO_EMAIL)
    h.clock.advance(XERO_ACCESS_LIFETIME + 60)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.FAILED
    after = await h.connection(connection.id)
    assert after.status is ConnectionStatus.NEEDS_RECONNECTION
    assert h.notifier.attention().count(AttentionReason.XERO_RECONNECT) == 1


async def test_many_concurrent_runs_of_different_connections_and_a_reconnect_lose_no_token(
    h: Harness,
) -> None:
    """Connections of one Xero user (one grant each) run at once, tokens expired, while one reconnects."""
    from sandbox.xero.seed import AU_TENANT_ID, UK_TENANT_ID

    connections = [await h.connect(tenant_id=t) for t in (NZ_TENANT_ID, AU_TENANT_ID, UK_TENANT_ID)]
    h.clock.advance(XERO_ACCESS_LIFETIME + 60)
    before = refresh_requests(h)
    h.xero.set_latency(0.2)
    runs = [asyncio.create_task(h.run(c.id)) for c in connections]
    await refresh_in_flight(h, before)
    fresh = reconnect_tokens(h)
    await reconnect(h, connections[0].id, fresh)
    finished = await asyncio.gather(*runs)
    h.xero.set_latency(0)
    assert [r.outcome for r in finished] == [RunOutcome.SUCCEEDED] * 3, [r.error for r in finished]

    for connection in connections:
        stored = await h.runtime.xero_tokens.load(connection.id)
        assert stored is not None
        record = h.xero.identity.refresh_tokens[stored.refresh_token]
        assert record.superseded_at is None, f"{connection.id} holds a superseded refresh token"
    stored = await h.runtime.xero_tokens.load(connections[0].id)
    assert stored is not None
    assert family_of(h, stored.refresh_token) == family_of(h, fresh.refresh_token), (
        "a refresh of the old grant was written over the reconnect's tokens"
    )
    # Every stored grant still refreshes.
    for connection in connections:
        try:
            await h.runtime.xero_tokens.access_token(connection.id, force_refresh=True)
        except AuthError as exc:  # pragma: no cover - the assertion below names it
            raise AssertionError(f"{connection.id} lost its refresh token: {exc}") from exc


async def test_many_token_users_in_three_processes_refresh_once_and_keep_the_current_token(
    h: Harness,
) -> None:
    """The control case without a reconnect: one refresh for thirty callers, and the token kept is live."""
    connection = await h.connect()
    processes = [
        h.runtime.xero_tokens,
        *(XeroTokenProvider(h.store, h.runtime.cipher, h.runtime.xero_oauth) for _ in range(2)),
    ]
    await expire_stored(h, connection.id)
    before = refresh_requests(h)
    h.xero.set_latency(0.05)
    tokens = await asyncio.gather(*(p.access_token(connection.id) for p in processes for _ in range(10)))
    h.xero.set_latency(0)
    assert refresh_requests(h) - before == 1
    assert len(set(tokens)) == 1
    stored = await h.runtime.xero_tokens.load(connection.id)
    assert stored is not None
    assert h.xero.identity.refresh_tokens[stored.refresh_token].superseded_at is None
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
