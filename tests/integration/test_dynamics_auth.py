"""DynamicsAuth with real MSAL against the Entra sandbox: sign-in, encrypted per-connection cache,
silent tokens per environment, refresh-token rotation written back, revocation and flow failures."""

# The fixtures come from the harness module: importing them is how pytest finds them, and the tests
# naming them as arguments is what ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json

import pytest

from bot.errors import AuthError, OAuthFlowError
from bot.storage.base import TokenKind
from bot.sync.dynamics_auth import DynamicsAuth
from sandbox.entra import ALICE, CONTOSO
from tests.integration.test_dynamics_harness import CONNECTION, REDIRECT_URI, Dyn, dyn, sandbox_data  # noqa: F401


def _token_grants(d: Dyn, grant: str) -> int:
    return sum(1 for r in d.sandboxes.entra.requests if r.path.endswith("/token") and r.grant_type == grant)


async def test_sign_in_returns_the_account_and_keeps_the_cache_encrypted(dyn: Dyn) -> None:
    account = await dyn.sign_in(ALICE.upn)

    assert account.tenant_id == CONTOSO.id
    assert account.object_id == ALICE.oid
    assert account.username == ALICE.upn
    assert account.name == "Alice Anders"
    assert account.home_account_id == f"{ALICE.oid}.{CONTOSO.id}"

    blob = await dyn.store.get_tokens(CONNECTION, TokenKind.DYNAMICS)
    assert blob is not None
    cache = json.loads(dyn.cipher.decrypt(blob))
    refresh_tokens = [entry["secret"] for entry in cache["RefreshToken"].values()]
    access_tokens = [entry["secret"] for entry in cache["AccessToken"].values()]
    assert refresh_tokens
    assert access_tokens
    secrets = [s.encode() for s in refresh_tokens + access_tokens]
    for key, value in await dyn.store.dump_all():
        for secret in secrets:
            assert secret not in value, f"plaintext token under {key}"
        assert b"RefreshToken" not in value


async def test_silent_tokens_per_environment_come_from_one_sign_in(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    before = await dyn.store.get_tokens(CONNECTION, TokenKind.DYNAMICS)
    envs = await dyn.environments()
    assert envs
    env = envs[0]

    token = await dyn.auth.access_token(CONNECTION, env.url)
    check = dyn.sandboxes.entra.check_access_token(token, env.url)
    assert check.claims is not None, check.problem
    assert check.claims.object_id == ALICE.oid
    assert check.claims.scopes == ("user_impersonation",)
    # The environment's token came from the refresh token, and the rotated one was stored.
    assert _token_grants(dyn, "refresh_token") == 1
    after = await dyn.store.get_tokens(CONNECTION, TokenKind.DYNAMICS)
    assert after != before

    # A second call is answered from the cache: no new grant, same token.
    assert await dyn.auth.access_token(CONNECTION, env.url + "/") == token
    assert _token_grants(dyn, "refresh_token") == 1


async def test_the_cache_survives_a_new_process(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    env = (await dyn.environments())[0]
    fresh = DynamicsAuth(dyn.settings, dyn.store, dyn.cipher)  # another process: nothing in memory

    token = await fresh.access_token(CONNECTION, env.url)

    assert dyn.sandboxes.entra.verify_access_token(token, env.url) is not None


async def test_concurrent_refreshes_of_one_connection_are_serialised(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    env = (await dyn.environments())[0]
    other = DynamicsAuth(dyn.settings, dyn.store, dyn.cipher)  # a second process sharing the store

    tokens = await asyncio.gather(
        *(auth.access_token(CONNECTION, env.url) for auth in (dyn.auth, other, dyn.auth, other))
    )

    # Serialised: the first refresh stored its rotated refresh token before anyone else read the cache,
    # so the others found a valid access token and nobody used a stale refresh token.
    assert len(set(tokens)) == 1
    assert _token_grants(dyn, "refresh_token") == 1


async def test_revoked_user_must_reconnect(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    env = (await dyn.environments())[0]
    dyn.sandboxes.entra.revoke_user(ALICE.upn)

    with pytest.raises(AuthError) as caught:
        await dyn.auth.access_token(CONNECTION, env.url)
    assert caught.value.reconnect_required
    assert caught.value.provider == "dynamics"
    assert caught.value.code == "invalid_grant"


async def test_interaction_required_means_reconnect(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    env = (await dyn.environments())[0]
    dyn.sandboxes.entra.require_interaction(ALICE.upn)

    with pytest.raises(AuthError) as caught:
        await dyn.auth.access_token(CONNECTION, env.url)
    assert caught.value.reconnect_required
    assert caught.value.code == "interaction_required"


async def test_unknown_or_forgotten_connection_must_reconnect(dyn: Dyn) -> None:
    with pytest.raises(AuthError) as caught:
        await dyn.auth.access_token("never-connected", dyn.settings.dataverse_discovery_url)
    assert caught.value.reconnect_required

    await dyn.sign_in(ALICE.upn)
    await dyn.auth.forget(CONNECTION)
    assert await dyn.store.get_tokens(CONNECTION, TokenKind.DYNAMICS) is None
    with pytest.raises(AuthError) as caught:
        await dyn.auth.access_token(CONNECTION, dyn.settings.dataverse_discovery_url)
    assert caught.value.reconnect_required


async def test_start_flow_uses_pkce_and_the_discovery_scope(dyn: Dyn) -> None:
    flow = await dyn.auth.start_flow(REDIRECT_URI, login_hint=ALICE.upn)

    assert dyn.auth.discovery_scope() == f"{dyn.settings.dataverse_discovery_url}/user_impersonation"
    assert flow["state"]
    assert "code_challenge_method=S256" in flow["auth_uri"]
    assert "login_hint=alice%40contoso.example" in flow["auth_uri"]
    assert flow["auth_uri"].startswith(f"{dyn.settings.entra_authority_host}/organizations/")


async def test_declined_consent_is_access_denied(dyn: Dyn) -> None:
    flow = await dyn.auth.start_flow(REDIRECT_URI)
    query = await dyn.browse(str(flow["auth_uri"]), ALICE.upn, accept=False)

    with pytest.raises(OAuthFlowError) as caught:
        await dyn.auth.complete_flow(CONNECTION, flow, query)
    assert caught.value.reason == "access_denied"
    assert await dyn.store.get_tokens(CONNECTION, TokenKind.DYNAMICS) is None


async def test_a_callback_from_another_flow_is_invalid_state(dyn: Dyn) -> None:
    flow = await dyn.auth.start_flow(REDIRECT_URI)
    other = await dyn.auth.start_flow(REDIRECT_URI)
    query = await dyn.browse(str(other["auth_uri"]), ALICE.upn)

    with pytest.raises(OAuthFlowError) as caught:
        await dyn.auth.complete_flow(CONNECTION, flow, query)
    assert caught.value.reason == "invalid_state"


async def test_a_code_used_twice_is_invalid_grant(dyn: Dyn) -> None:
    flow = await dyn.auth.start_flow(REDIRECT_URI)
    query = await dyn.browse(str(flow["auth_uri"]), ALICE.upn)
    await dyn.auth.complete_flow(CONNECTION, dict(flow), query)

    with pytest.raises(OAuthFlowError) as caught:
        await dyn.auth.complete_flow("conn-dyn-2", dict(flow), query)
    assert caught.value.reason == "invalid_grant"
    assert await dyn.store.get_tokens("conn-dyn-2", TokenKind.DYNAMICS) is None


async def test_an_entra_outage_while_signing_in_is_unreachable_not_a_crash(dyn: Dyn) -> None:
    """MSAL raises MsalServiceError for a 5xx of the token endpoint (it does not return an error
    result): the sign-in ends as the flow's 'provider unavailable', which the page and the chat word,
    and nothing is stored."""
    flow = await dyn.auth.start_flow(REDIRECT_URI)
    query = await dyn.browse(str(flow["auth_uri"]), ALICE.upn)
    dyn.sandboxes.entra.fail_next(1, 503, retry_after=0)

    with pytest.raises(OAuthFlowError) as caught:
        await dyn.auth.complete_flow(CONNECTION, flow, query)
    assert caught.value.reason == "provider_unavailable"
    assert await dyn.store.get_tokens(CONNECTION, TokenKind.DYNAMICS) is None
