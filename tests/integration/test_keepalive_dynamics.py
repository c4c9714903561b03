"""The sign-in keeper when Entra ID's token endpoint *fails* (an outage), rather than refusing the refresh.

Entra's outage answer is a 5xx with `temporarily_unavailable` (the Entra sandbox's `fail_next`, see
sandbox/entra/README.md). Real MSAL raises on it rather than returning an error, and replays it from its
own throttle cache for `Retry-After` seconds of real time (5 s without the header); these tests send
`Retry-After: 0` so that every tick's refresh really reaches the sandbox, as hours apart would in life.
Thresholds are `KeeperPolicy`'s defaults: due after 30 idle days, warned within 7 days of Entra's 90.
"""

from __future__ import annotations

import pytest

from bot.storage.base import ConnectionStatus, Provider, RunOutcome
from bot.storage.run_kinds import FailureKind
from bot.sync.keepalive import ENTRA_REFRESH_INACTIVITY, KeeperPolicy
from bot.sync.ports import AttentionReason
from tests.integration.harness import Harness
from tests.integration.test_keepalive import DAY, entra_refreshes, keeper

pytestmark = pytest.mark.timeout(90)
TOKEN_ENDPOINT_OUTAGE = 50


def test_the_thresholds_these_tests_assume() -> None:
    policy = KeeperPolicy()
    assert (policy.dynamics_idle.days, policy.warn_before.days, ENTRA_REFRESH_INACTIVITY.days) == (30, 7, 90)


async def test_a_failing_dynamics_refresh_warns_once_near_entras_inactivity_expiry(h: Harness) -> None:
    connection = await h.connect()
    k = keeper(h)
    await k.tick()
    h.entra.fail_next(TOKEN_ENDPOINT_OUTAGE, 503, retry_after=0)  # Xero keeps working

    # (a) Day 31: the refresh is due and fails; 59 days are left, so no one needs to act yet.
    h.clock.advance(31 * DAY)
    before = entra_refreshes(h)
    report = await k.tick()
    assert entra_refreshes(h) - before == 1  # it did reach Entra, and Entra failed it
    assert report.xero_refreshed == [connection.id]
    assert report.dynamics_refreshed == []
    assert report.failed == 1
    assert report.warned == []
    assert (await h.connection(connection.id)).status == ConnectionStatus.ACTIVE
    # A provider that did not answer is asked again after `failed_retry` (an hour), not before.
    h.clock.advance(30 * 60)
    assert (await k.tick()).due == 0

    # (b) Day 84: within 7 days of the 90, the failure is told, once.
    h.clock.advance(53 * DAY)
    report = await k.tick()
    assert report.warned == [(connection.id, AttentionReason.DYNAMICS_SIGNIN_EXPIRING)]
    assert report.dynamics_refreshed == []
    h.clock.advance(2 * 3600)
    later = await k.tick()
    assert later.failed == 1  # asked again, failed again
    assert later.warned == []
    assert h.notifier.attention() == [AttentionReason.DYNAMICS_SIGNIN_EXPIRING]
    assert (await h.connection(connection.id)).status == ConnectionStatus.ACTIVE
    outage_requests = entra_refreshes(h) - before

    # (c) Entra answers again: the next look refreshes, and a run works.
    h.entra.faults.reset()
    h.clock.advance(2 * 3600)
    report = await k.tick()
    assert report.dynamics_refreshed == [connection.id]
    assert report.warned == []
    assert entra_refreshes(h) - before == outage_requests + 1
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    assert h.notifier.attention() == [AttentionReason.DYNAMICS_SIGNIN_EXPIRING]


async def test_an_outage_is_not_taken_for_a_lapsed_sign_in(h: Harness) -> None:
    connection = await h.connect()
    h.entra.fail_next(TOKEN_ENDPOINT_OUTAGE, 500, retry_after=0)
    h.clock.advance(31 * DAY)

    report = await keeper(h).tick()
    assert report.failed == 1
    assert report.warned == []  # not DYNAMICS_RECONNECT: nothing was refused
    assert h.notifier.attention() == []
    assert (await h.connection(connection.id)).status == ConnectionStatus.ACTIVE

    # A run meanwhile (after its own retries, a few seconds) fails as "no answer" from Dynamics' sign-in,
    # and does not ask for a reconnect either.
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.FAILED
    assert (run.failed_provider, run.failure_kind, run.attention) == (Provider.DYNAMICS, FailureKind.NO_ANSWER, None)
    assert (await h.connection(connection.id)).status == ConnectionStatus.ACTIVE
    assert h.notifier.attention() == []
