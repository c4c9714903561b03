"""XeroTokenProvider when the stored token set changes while a refresh is in flight (a reconnect, a
disconnect), against the Xero sandbox with its token endpoint slowed down.

One provider serialises its refreshes with `save()` and `delete()` (the same locks). Across processes
the store lock could lapse during a slow refresh (its TTL), so a refresh also reads the stored set again
before it writes: the tests give a provider a lock TTL shorter than Xero's answer to reach that path.
"""

# The fixtures come from the harness module: importing them is how pytest finds them, and the tests
# naming them as arguments is what ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.errors import AuthError
from bot.sync.xero_auth import XeroTokenSet
from bot.sync.xero_tokens import XeroTokenProvider
from sandbox.xero.seed import DEMO_EMAIL, DEMO_PASSWORD, NZ_TENANT_ID
from tests.integration.test_xero_client_harness import (  # noqa: F401
    CONNECTION,
    World,
    connected,
    consent,
    world,
)

pytestmark = pytest.mark.timeout(30)
LATENCY = 0.3  # Xero's token endpoint answers this late (wall clock)


def family(world: World, refresh_token: str) -> str:
    return str(world.sandbox.identity.refresh_tokens[refresh_token].family_id)


def lapsing_provider(world: World) -> XeroTokenProvider:
    """A provider whose store lock lapses long before Xero answers (as if its process stalled)."""
    return XeroTokenProvider(
        world.store, world.cipher, world.oauth, world.on_reconnect, now=world.clock.now, lock_ttl=0.05
    )


async def refresh_in_flight(world: World, before: int) -> None:
    for _ in range(400):
        if len(world.refresh_requests()) > before:
            return
        await asyncio.sleep(0.005)
    raise AssertionError("no refresh reached Xero")


async def expired_and_reconnect_tokens(world: World) -> XeroTokenSet:
    """The stored access token has expired; a reconnect's sign-in (a new grant) is ready to be saved."""
    world.clock.advance(31 * 60)
    fresh = await consent(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID])
    world.sandbox.set_latency(LATENCY)
    return fresh


async def stored(world: World) -> XeroTokenSet:
    tokens = await world.tokens.load(CONNECTION)
    assert tokens is not None
    return tokens


@pytest.mark.usefixtures("connected")
async def test_a_reconnect_waits_for_the_refresh_in_flight_and_is_what_stays(world: World) -> None:
    fresh = await expired_and_reconnect_tokens(world)
    refreshing = asyncio.create_task(world.tokens.access_token(CONNECTION))
    await refresh_in_flight(world, 0)
    await world.tokens.save(CONNECTION, fresh)

    assert refreshing.done(), "save() did not wait for the refresh that held the lock"
    assert await refreshing  # the refresh's own answer, handed out before the reconnect replaced it
    assert (await stored(world)).refresh_token == fresh.refresh_token


@pytest.mark.usefixtures("connected")
async def test_a_refresh_whose_lock_lapsed_does_not_overwrite_a_reconnect(world: World) -> None:
    fresh = await expired_and_reconnect_tokens(world)
    stalled, other_process = lapsing_provider(world), world.provider()
    refreshing = asyncio.create_task(stalled.access_token(CONNECTION))
    await refresh_in_flight(world, 0)
    await other_process.save(CONNECTION, fresh)  # the lapsed lock lets it in while Xero is answering
    assert not refreshing.done()

    assert await refreshing == fresh.access_token  # the stored set is handed out, not the old grant's
    assert (await stored(world)).refresh_token == fresh.refresh_token
    assert stalled.refreshes == 0
    assert len(world.refresh_requests()) == 1


@pytest.mark.usefixtures("connected")
async def test_invalid_grant_for_a_replaced_refresh_token_asks_for_no_reconnect(world: World) -> None:
    world.sandbox.revoke_user_tokens(DEMO_EMAIL)  # the old grant is dead; the reconnect makes a new one
    fresh = await expired_and_reconnect_tokens(world)
    stalled = lapsing_provider(world)
    refreshing = asyncio.create_task(stalled.access_token(CONNECTION))
    await refresh_in_flight(world, 0)
    await world.provider().save(CONNECTION, fresh)

    assert await refreshing == fresh.access_token
    assert world.reconnects == []
    assert [r.status for r in world.refresh_requests()] == [400]
    # Nothing remembers the old refusal: the new grant refreshes.
    world.sandbox.set_latency(0)
    assert await stalled.access_token(CONNECTION, force_refresh=True) != fresh.access_token
    assert family(world, (await stored(world)).refresh_token) == family(world, fresh.refresh_token)


@pytest.mark.usefixtures("connected")
async def test_invalid_grant_for_the_stored_refresh_token_still_asks_for_a_reconnect(world: World) -> None:
    """The control case of the one above: nobody replaced the tokens, so the refusal stands."""
    world.sandbox.revoke_user_tokens(DEMO_EMAIL)
    world.clock.advance(31 * 60)
    with pytest.raises(AuthError) as info:
        await lapsing_provider(world).access_token(CONNECTION)
    assert info.value.reconnect_required
    assert info.value.code == "invalid_grant"
    assert world.reconnects == [CONNECTION]


@pytest.mark.usefixtures("connected")
async def test_a_replaced_set_that_has_expired_too_is_refreshed_once(world: World) -> None:
    fresh = await expired_and_reconnect_tokens(world)
    expired = fresh.model_copy(update={"expires_at": world.clock.now() - timedelta(minutes=1)})
    stalled = lapsing_provider(world)
    refreshing = asyncio.create_task(stalled.access_token(CONNECTION))
    await refresh_in_flight(world, 0)
    await world.provider().save(CONNECTION, expired)

    token = await refreshing
    after = await stored(world)
    assert token == after.access_token != fresh.access_token
    assert family(world, after.refresh_token) == family(world, fresh.refresh_token)
    assert after.refresh_token != fresh.refresh_token  # rotated by the second refresh, and stored
    assert stalled.refreshes == 1
    assert len(world.refresh_requests()) == 2


@pytest.mark.usefixtures("connected")
async def test_a_refresh_does_not_bring_back_tokens_a_disconnect_deleted(world: World) -> None:
    world.clock.advance(31 * 60)
    world.sandbox.set_latency(LATENCY)
    stalled = lapsing_provider(world)
    refreshing = asyncio.create_task(stalled.access_token(CONNECTION))
    await refresh_in_flight(world, 0)
    await world.provider().delete(CONNECTION)

    with pytest.raises(AuthError) as info:
        await refreshing
    assert info.value.code == "no_tokens"
    assert await world.tokens.load(CONNECTION) is None
    assert world.reconnects == []


@pytest.mark.usefixtures("connected")
async def test_a_delete_waits_for_the_refresh_in_flight(world: World) -> None:
    world.clock.advance(31 * 60)
    world.sandbox.set_latency(LATENCY)
    refreshing = asyncio.create_task(world.tokens.access_token(CONNECTION))
    await refresh_in_flight(world, 0)
    await world.tokens.delete(CONNECTION)

    assert refreshing.done()
    assert await refreshing
    assert await world.tokens.load(CONNECTION) is None
