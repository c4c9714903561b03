"""The sign-in keeper against the three sandboxes: what it refreshes, what it skips, whom it tells.

The keeper runs on the sandboxes' clock (so does the Xero token provider of the harness's runtime), so
moving that clock forward makes refresh tokens idle on both sides at once. Xero refresh requests are
counted in the Xero sandbox's log, Entra refresh grants in the Entra sandbox's log.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.storage.base import Connection, ConnectionStatus, RunOutcome
from bot.sync.keepalive import KeeperPolicy, SignInKeeper
from bot.sync.ports import AttentionReason
from sandbox.entra import ALICE
from sandbox.xero.seed import DEMO_EMAIL
from tests.integration.harness import Harness

pytestmark = pytest.mark.timeout(90)
DAY = 86400


def keeper(h: Harness, policy: KeeperPolicy | None = None) -> SignInKeeper:
    return SignInKeeper(
        h.store,
        h.runtime.xero_tokens,
        h.runtime.dynamics_auth,
        h.notifier,
        discovery_url=h.settings.dataverse_discovery_url,
        policy=policy,
        clock=h.clock,
    )


def xero_refreshes(h: Harness) -> int:
    return sum(
        1
        for r in h.xero.requests
        if r.path == "/connect/token" and r.form.get("grant_type") == "refresh_token"
    )


def entra_refreshes(h: Harness) -> int:
    return sum(1 for r in h.entra.requests if r.path.endswith("/token") and r.grant_type == "refresh_token")


async def set_status(h: Harness, connection: Connection, status: ConnectionStatus) -> None:
    current = await h.connection(connection.id)
    await h.store.save_connection(current.model_copy(update={"status": status}))


async def test_fresh_sign_ins_are_skipped_without_calling_a_provider(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    xero_before, entra_before = xero_refreshes(h), entra_refreshes(h)

    first = await k.tick()
    # Never looked at before: its Xero tokens are read (from the store) and found fresh.
    assert (first.looked_at, first.due) == (1, 1)
    second = await k.tick()
    # Now the keeper's record alone says nothing can be due: not even the tokens are read.
    assert (second.looked_at, second.due) == (1, 0)
    assert (xero_refreshes(h), entra_refreshes(h)) == (xero_before, entra_before)
    assert first.xero_refreshed == first.dynamics_refreshed == []
    assert h.notifier.attention() == []
    assert connection.id not in first.xero_refreshed


async def test_idle_sign_ins_are_refreshed_once_and_then_left_alone(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    await k.tick()
    before = await h.runtime.xero_tokens.load(connection.id)
    assert before is not None
    h.clock.advance(31 * DAY)
    xero_before, entra_before = xero_refreshes(h), entra_refreshes(h)

    report = await k.tick()
    assert report.xero_refreshed == [connection.id]
    assert report.dynamics_refreshed == [connection.id]
    assert (xero_refreshes(h) - xero_before, entra_refreshes(h) - entra_before) == (1, 1)
    after = await h.runtime.xero_tokens.load(connection.id)
    assert after is not None
    assert after.refresh_token != before.refresh_token
    assert after.refresh_idle(h.clock.now()) < timedelta(minutes=1)

    again = await k.tick()
    assert again.due == 0
    assert (xero_refreshes(h) - xero_before, entra_refreshes(h) - entra_before) == (1, 1)


async def test_paused_connections_are_kept_and_disconnected_ones_are_not(h: Harness) -> None:
    paused = await h.connect(name="Paused")
    gone = await h.connect(name="Gone")
    await set_status(h, paused, ConnectionStatus.PAUSED)
    await set_status(h, gone, ConnectionStatus.DISCONNECTED)
    h.clock.advance(31 * DAY)

    report = await keeper(h).tick()
    assert report.looked_at == 1
    assert report.xero_refreshed == [paused.id]
    assert report.dynamics_refreshed == [paused.id]


async def test_a_sign_in_a_run_renewed_is_not_refreshed_again(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    await k.tick()
    h.clock.advance(31 * DAY)
    run = await h.run(connection.id)  # refreshes both sign-ins (their access tokens expired long ago)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    xero_before, entra_before = xero_refreshes(h), entra_refreshes(h)

    report = await k.tick()
    # Xero: the record said it could be due, the tokens read from the store said no. Dynamics: the run
    # succeeded just now, so it was not even due.
    assert report.due == 1
    assert report.xero_refreshed == report.dynamics_refreshed == []
    assert (xero_refreshes(h), entra_refreshes(h)) == (xero_before, entra_before)


@pytest.mark.parametrize("keeper_first", [True, False])
async def test_never_refreshes_twice_beside_a_run(h: Harness, keeper_first: bool) -> None:
    connection = await h.connect()
    k = keeper(h, KeeperPolicy(dynamics_idle=timedelta(days=80)))  # only Xero is in question here
    h.clock.advance(31 * DAY)  # the access token expired and the refresh token is idle: both want to refresh
    h.xero.set_latency(0.15)  # long enough for both to be under way together
    before = xero_refreshes(h)

    if keeper_first:
        tick = asyncio.create_task(k.tick())
        await asyncio.sleep(0.05)
        run = await h.run(connection.id)
        report = await tick
    else:
        running = asyncio.create_task(h.run(connection.id))
        await asyncio.sleep(0.05)
        report = await k.tick()
        run = await running

    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    assert report.failed == 0
    assert xero_refreshes(h) - before == 1
    h.xero.set_latency(0)
    # What is stored works (a second refresh would have superseded one of the two answers).
    h.clock.advance(31 * 60)
    assert (await h.run(connection.id)).outcome == RunOutcome.SUCCEEDED


async def test_a_refused_xero_sign_in_is_told_once(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    h.xero.revoke_user_tokens(DEMO_EMAIL)
    h.clock.advance(31 * DAY)

    report = await k.tick()
    assert report.warned == [(connection.id, AttentionReason.XERO_RECONNECT)]
    # The next days: asked again once a day, not told again.
    for _ in range(3):
        h.clock.advance(DAY + 60)
        assert (await k.tick()).warned == []
    assert h.notifier.attention() == [AttentionReason.XERO_RECONNECT]


async def test_a_connection_already_waiting_for_a_reconnect_is_not_told_again(h: Harness) -> None:
    connection = await h.connect()
    await set_status(h, connection, ConnectionStatus.NEEDS_RECONNECTION)
    h.xero.revoke_user_tokens(DEMO_EMAIL)
    h.clock.advance(31 * DAY)

    report = await keeper(h).tick()
    assert report.failed == 1
    # Its Dynamics sign-in is still kept alive for when Xero is reconnected.
    assert report.dynamics_refreshed == [connection.id]
    assert h.notifier.attention() == []


async def test_a_failing_refresh_warns_once_near_the_hard_expiry(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    await k.tick()
    h.xero.fail_next(50, 400, path_prefix="/connect/token")  # Xero refuses the refresh, not the grant

    h.clock.advance(31 * DAY)  # refresh due, fails, but 29 days are left: no one needs to act yet
    assert (await k.tick()).warned == []
    h.clock.advance(24 * DAY)  # day 55: within 7 days of Xero's 60
    report = await k.tick()
    assert report.warned == [(connection.id, AttentionReason.XERO_TOKEN_EXPIRING)]
    h.clock.advance(2 * 3600)
    assert (await k.tick()).warned == []
    assert h.notifier.attention() == [AttentionReason.XERO_TOKEN_EXPIRING]

    # Xero answers again: the next look refreshes, and a later lapse would be told again.
    h.xero.faults.reset()
    h.clock.advance(2 * 3600)
    report = await k.tick()
    assert report.xero_refreshed == [connection.id]
    assert (await h.run(connection.id)).outcome == RunOutcome.SUCCEEDED


async def test_a_refused_dynamics_sign_in_is_told_once(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    h.entra.revoke_user(ALICE.upn)
    h.clock.advance(31 * DAY)

    report = await k.tick()
    assert report.xero_refreshed == [connection.id]
    assert report.warned == [(connection.id, AttentionReason.DYNAMICS_RECONNECT)]
    h.clock.advance(DAY + 60)
    assert (await k.tick()).warned == []
    assert h.notifier.attention() == [AttentionReason.DYNAMICS_RECONNECT]


async def test_batches_cover_every_connection(h: Harness) -> None:
    connections = [await h.connect(name=f"C{i}") for i in range(3)]
    h.clock.advance(31 * DAY)

    report = await keeper(h, KeeperPolicy(batch=2, concurrency=1)).tick()
    assert report.looked_at == report.due == 3
    assert sorted(report.xero_refreshed) == sorted(c.id for c in connections)
