"""XeroOAuth and XeroTokenProvider against the Xero sandbox: the code flow through its pages, refresh
with rotation, one refresh for many callers (and processes), invalid_grant, revocation, connections."""

# The fixtures come from the harness module: importing them is how pytest finds them, and the tests
# naming them as arguments is what ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.config import Settings
from bot.errors import AuthError, NotFound, TransientProviderError
from bot.storage.base import TokenKind
from bot.sync.xero_auth import XeroOAuth
from sandbox.xero.sandbox import CLIENT_ID
from sandbox.xero.seed import AU_TENANT_ID, DEMO_EMAIL, DEMO_PASSWORD, NZ_TENANT_ID, UK_TENANT_ID
from tests.integration.test_xero_client_harness import (  # noqa: F401
    CONNECTION,
    REDIRECT_URI,
    World,
    authorize,
    connected,
    consent,
    world,
)


async def test_code_flow_through_the_pages_then_connections(world: World) -> None:
    code, verifier = await authorize(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID, UK_TENANT_ID])
    tokens = await world.oauth.exchange_code(code, verifier, REDIRECT_URI)

    assert {"offline_access", "accounting.settings.read", "openid"} <= tokens.scopes
    assert tokens.email == DEMO_EMAIL
    assert tokens.xero_user_id
    assert tokens.name == "Dana Demo"
    assert tokens.auth_event_id
    assert tokens.expires_at == pytest.approx(world.clock.now() + timedelta(minutes=30), abs=timedelta(seconds=5))
    exchange = [r for r in world.sandbox.requests if r.path == "/connect/token"][-1]
    assert exchange.headers["Authorization"].startswith("Basic")
    assert exchange.form["grant_type"] == "authorization_code"
    assert "code_verifier" in exchange.form
    assert "client_secret" not in exchange.form

    connections = await world.oauth.connections(tokens.access_token, tokens.auth_event_id)
    assert {c.tenant_id for c in connections} == {NZ_TENANT_ID, UK_TENANT_ID}
    assert {c.auth_event_id for c in connections} == {tokens.auth_event_id}
    assert all(c.tenant_name and c.created_date_utc for c in connections)

    # A second consent adds AU: filtering by its auth event shows only what it connected.
    again = await consent(world, DEMO_EMAIL, DEMO_PASSWORD, [AU_TENANT_ID])
    latest = await world.oauth.connections(again.access_token, again.auth_event_id)
    assert [c.tenant_id for c in latest] == [AU_TENANT_ID]
    assert len(await world.oauth.connections(again.access_token)) == 3

    uk = next(c for c in connections if c.tenant_id == UK_TENANT_ID)
    await world.oauth.delete_connection(again.access_token, uk.id)
    assert {c.tenant_id for c in await world.oauth.connections(again.access_token)} == {NZ_TENANT_ID, AU_TENANT_ID}
    with pytest.raises(NotFound):
        await world.oauth.delete_connection(again.access_token, uk.id)


async def test_a_code_works_once(world: World) -> None:
    code, verifier = await authorize(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID])
    await world.oauth.exchange_code(code, verifier, REDIRECT_URI)
    with pytest.raises(AuthError) as info:
        await world.oauth.exchange_code(code, verifier, REDIRECT_URI)
    assert info.value.code == "invalid_grant"
    assert info.value.reconnect_required


async def test_code_exchange_is_not_retried_once_the_request_may_have_arrived(world: World) -> None:
    code, verifier = await authorize(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID])
    world.sandbox.requests.clear()
    world.sandbox.drop_next(1, path_prefix="/connect/token")
    with pytest.raises(TransientProviderError):
        await world.oauth.exchange_code(code, verifier, REDIRECT_URI)
    assert len(world.sandbox.requests) == 1


async def test_wrong_client_secret_is_invalid_client_not_reconnect(world: World) -> None:
    wrong = Settings(_env_file=None, sandbox=True, xero_client_id=CLIENT_ID,
                     xero_client_secret="not-the-secret",
                     xero_login_url=world.url, xero_identity_url=world.url, xero_api_url=world.url)
    code, verifier = await authorize(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID])
    with pytest.raises(AuthError) as info:
        await XeroOAuth(wrong, world.http).exchange_code(code, verifier, REDIRECT_URI)
    assert info.value.code == "invalid_client"
    assert not info.value.reconnect_required


@pytest.mark.usefixtures("connected")
async def test_tokens_are_encrypted_at_rest(world: World) -> None:
    tokens = await world.tokens.load(CONNECTION)
    assert tokens is not None
    blob = await world.store.get_tokens(CONNECTION, TokenKind.XERO)
    assert blob is not None
    assert tokens.access_token.encode() not in blob
    assert tokens.refresh_token.encode() not in blob
    raw = b"".join(value for _, value in await world.store.dump_all())
    assert tokens.refresh_token.encode() not in raw
    assert tokens.access_token[:40].encode() not in raw


@pytest.mark.usefixtures("connected")
async def test_refresh_before_expiry_rotates_and_persists(world: World) -> None:
    before = await world.tokens.load(CONNECTION)
    assert before is not None
    assert await world.tokens.access_token(CONNECTION) == before.access_token  # still fresh: no refresh
    assert world.refresh_requests() == []

    world.clock.advance(28 * 60 + 1)  # inside the two-minute margin
    access = await world.tokens.access_token(CONNECTION)

    after = await world.tokens.load(CONNECTION)
    assert after is not None
    assert access == after.access_token != before.access_token
    assert after.refresh_token != before.refresh_token
    assert after.refresh_issued_at > before.refresh_issued_at
    assert after.email == before.email == DEMO_EMAIL  # kept although a refresh sends no id_token
    assert len(world.refresh_requests()) == 1
    assert world.refresh_requests()[0].headers["Authorization"].startswith("Basic")
    # The new token works against the API.
    assert await world.client.tax_rates(CONNECTION, NZ_TENANT_ID)


@pytest.mark.usefixtures("connected")
async def test_ten_concurrent_callers_with_an_expired_token_cause_one_refresh(world: World) -> None:
    world.clock.advance(31 * 60)
    other_process = world.provider()
    callers = [world.tokens.access_token(CONNECTION) for _ in range(10)]
    callers += [other_process.access_token(CONNECTION) for _ in range(10)]

    results = await asyncio.gather(*callers)

    assert len(world.refresh_requests()) == 1
    assert len(set(results)) == 1
    stored = await world.tokens.load(CONNECTION)
    assert stored is not None
    assert results[0] == stored.access_token


@pytest.mark.usefixtures("connected")
async def test_many_forced_refreshes_for_one_rejected_token_refresh_once(world: World) -> None:
    rejected = await world.tokens.access_token(CONNECTION)
    results = await asyncio.gather(
        *(world.tokens.access_token(CONNECTION, force_refresh=True, rejected_token=rejected) for _ in range(10))
    )
    assert len(world.refresh_requests()) == 1
    assert set(results) != {rejected}
    assert len(set(results)) == 1


@pytest.mark.usefixtures("connected")
async def test_ten_concurrent_api_calls_after_expiry_refresh_once(world: World) -> None:
    world.sandbox.expire_access_tokens()
    results = await asyncio.gather(*(world.client.branding_themes(CONNECTION, NZ_TENANT_ID) for _ in range(10)))
    assert all(results)
    assert len(world.refresh_requests()) == 1


@pytest.mark.usefixtures("connected")
async def test_a_lost_refresh_answer_is_retried(world: World) -> None:
    world.clock.advance(31 * 60)
    world.sandbox.drop_next(1, path_prefix="/connect/token")
    world.sandbox.fail_next(1, 503, path_prefix="/connect/token")
    assert await world.tokens.access_token(CONNECTION)
    assert [r.status for r in world.refresh_requests()] == [0, 503, 200]


@pytest.mark.usefixtures("connected")
async def test_invalid_grant_marks_the_connection_for_reconnection(world: World) -> None:
    world.sandbox.revoke_user_tokens(DEMO_EMAIL)
    with pytest.raises(AuthError) as info:
        await world.client.accounts(CONNECTION, NZ_TENANT_ID)  # 401, refresh -> invalid_grant
    assert info.value.reconnect_required
    assert info.value.code == "invalid_grant"
    assert world.reconnects == [CONNECTION]

    # Later callers learn it without asking Xero again, and nobody is told twice.
    with pytest.raises(AuthError):
        await world.tokens.access_token(CONNECTION, force_refresh=True)
    assert len(world.refresh_requests()) == 1
    assert world.reconnects == [CONNECTION]


@pytest.mark.usefixtures("connected")
async def test_an_idle_refresh_token_expires_after_sixty_days(world: World) -> None:
    world.clock.advance(45 * 24 * 3600)
    assert await world.tokens.refresh_if_idle(CONNECTION, timedelta(days=40))
    assert not await world.tokens.refresh_if_idle(CONNECTION, timedelta(days=40))

    world.clock.advance(61 * 24 * 3600)
    with pytest.raises(AuthError) as info:
        await world.tokens.access_token(CONNECTION)
    assert info.value.reconnect_required
    assert world.reconnects == [CONNECTION]


async def test_missing_tokens_need_a_reconnect(world: World) -> None:
    with pytest.raises(AuthError) as info:
        await world.tokens.access_token("never-connected")
    assert info.value.reconnect_required
    assert world.reconnects == []


async def test_revoke_removes_access(world: World) -> None:
    tokens = await consent(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID])
    await world.oauth.revoke(tokens.refresh_token)
    with pytest.raises(AuthError) as info:
        await world.oauth.refresh(tokens.refresh_token)
    assert info.value.reconnect_required
    assert await world.oauth.connections(tokens.access_token) == []


async def test_connections_with_a_bad_token_is_an_auth_error(world: World) -> None:
    with pytest.raises(AuthError):
        await world.oauth.connections("not-a-token")
