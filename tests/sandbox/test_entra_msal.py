"""Real MSAL against the Entra sandbox: the whole authorization code flow, then silent tokens per resource."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import msal
import pytest

from sandbox.entra import ALICE, CLIENT_ID, CONTOSO, DAVE
from tests.sandbox.conftest_ms import REDIRECT_URI, MsSandboxes, press, read_form, running_ms_sandboxes


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def _connect(ms: MsSandboxes, upn: str = ALICE.upn) -> tuple[msal.ConfidentialClientApplication, dict[str, object]]:
    app = await asyncio.to_thread(ms.msal_app, msal.SerializableTokenCache())
    flow = await asyncio.to_thread(
        app.initiate_auth_code_flow, [f"{ms.dataverse_url}/user_impersonation"], redirect_uri=REDIRECT_URI,
        login_hint=upn,
    )
    query = await ms.browse_sign_in(flow["auth_uri"], upn)
    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, query)
    return app, result


async def test_real_msal_signs_in_then_gets_a_token_for_another_resource_silently(ms: MsSandboxes) -> None:
    app, result = await _connect(ms)

    assert "access_token" in result, result
    claims = result["id_token_claims"]
    assert isinstance(claims, dict)
    assert claims["preferred_username"] == ALICE.upn
    assert claims["tid"] == CONTOSO.id
    assert claims["aud"] == CLIENT_ID
    assert claims["iss"] == f"{ms.entra_url}/{CONTOSO.id}/v2.0"
    gds = jwt.decode(str(result["access_token"]), options={"verify_signature": False})
    assert gds["aud"] == ms.dataverse_url
    assert gds["scp"] == "user_impersonation"

    accounts = await asyncio.to_thread(app.get_accounts, ALICE.upn)
    # client_info made the account id `oid.tid`, not the id token's pairwise sub.
    assert accounts[0]["home_account_id"] == f"{ALICE.oid}.{CONTOSO.id}"
    env_scope = f"{ms.env_url('contosoprod')}/user_impersonation"
    silent = await asyncio.to_thread(app.acquire_token_silent, [env_scope], accounts[0])

    assert silent is not None
    assert silent["token_source"] == "identity_provider"  # it used the refresh token
    env_claims = ms.entra.verify_access_token(silent["access_token"], ms.env_url("contosoprod"))
    assert env_claims is not None
    assert env_claims.upn == ALICE.upn
    assert ms.entra.verify_access_token(silent["access_token"], ms.dataverse_url) is None  # one audience
    again = await asyncio.to_thread(app.acquire_token_silent, [env_scope], accounts[0])
    assert again is not None
    assert again["token_source"] == "cache"
    grants = [r.grant_type for r in ms.entra.requests if r.grant_type]
    assert grants == ["authorization_code", "refresh_token"]


async def test_the_id_token_echoes_the_nonce_msal_sent(ms: MsSandboxes) -> None:
    app = await asyncio.to_thread(ms.msal_app)
    flow = await asyncio.to_thread(app.initiate_auth_code_flow, [f"{ms.dataverse_url}/user_impersonation"], redirect_uri=REDIRECT_URI)
    query = await ms.browse_sign_in(flow["auth_uri"], ALICE.upn)
    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, query)

    assert "client_info" in query
    assert result["id_token_claims"]["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()


async def test_cancel_on_the_consent_page_returns_access_denied(ms: MsSandboxes) -> None:
    app = await asyncio.to_thread(ms.msal_app)
    flow = await asyncio.to_thread(app.initiate_auth_code_flow, [f"{ms.dataverse_url}/user_impersonation"], redirect_uri=REDIRECT_URI)
    query = await ms.browse_sign_in(flow["auth_uri"], ALICE.upn, accept=False)

    assert query["error"] == "access_denied"
    assert query["error_description"].startswith("AADSTS65004")
    assert query["state"] == flow["state"]
    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, query)
    assert result["error"] == "access_denied"


async def test_consent_is_remembered_so_the_second_sign_in_skips_the_consent_page(ms: MsSandboxes) -> None:
    await _connect(ms)
    app = await asyncio.to_thread(ms.msal_app)
    flow = await asyncio.to_thread(app.initiate_auth_code_flow, [f"{ms.dataverse_url}/user_impersonation"], redirect_uri=REDIRECT_URI)
    page = await ms.http.get(flow["auth_uri"])
    form = read_form(page.text)
    response = await ms.http.post(ms.entra_url + form["action"], data=press(form, "Sign in", username=ALICE.upn, password=ALICE.password))

    assert response.status_code == 302


async def test_interaction_required_is_reported_to_silent_callers(ms: MsSandboxes) -> None:
    app, _ = await _connect(ms)
    account = (await asyncio.to_thread(app.get_accounts))[0]
    ms.entra.require_interaction(ALICE.upn)

    blocked = await asyncio.to_thread(
        app.acquire_token_silent_with_error, [f"{ms.env_url('contosoprod')}/user_impersonation"], account
    )

    assert blocked is not None
    assert blocked["error"] == "interaction_required"
    assert 50079 in blocked["error_codes"]


async def test_a_revoked_user_gets_invalid_grant(ms: MsSandboxes) -> None:
    # A separate app: MSAL replays an identical HTTP 400 from its own cache for 60 s.
    app, _ = await _connect(ms)
    account = (await asyncio.to_thread(app.get_accounts))[0]
    ms.entra.revoke_user(ALICE.upn)

    revoked = await asyncio.to_thread(
        app.acquire_token_silent_with_error, [f"{ms.env_url('contosoprod')}/user_impersonation"], account
    )

    assert revoked is not None
    assert revoked["error"] == "invalid_grant"
    assert revoked["error_description"].startswith("AADSTS50173")
    assert await asyncio.to_thread(app.acquire_token_silent, [f"{ms.dataverse_url}/user_impersonation"], account)


async def test_authorization_codes_are_single_use_and_bound_to_the_pkce_verifier(ms: MsSandboxes) -> None:
    app = await asyncio.to_thread(ms.msal_app)
    flow = await asyncio.to_thread(app.initiate_auth_code_flow, [f"{ms.dataverse_url}/user_impersonation"], redirect_uri=REDIRECT_URI)
    query = await ms.browse_sign_in(flow["auth_uri"], ALICE.upn)
    base = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI,
            "scope": f"{ms.dataverse_url}/user_impersonation openid offline_access profile"}

    wrong = await ms.token_request({**base, "code_verifier": "not-the-verifier-" + "x" * 30})
    assert wrong["_status"] == 400
    assert wrong["error"] == "invalid_grant"
    assert wrong["error_codes"] == [501481]
    good = await ms.token_request({**base, "code_verifier": flow["code_verifier"]})
    assert good["_status"] == 200
    reused = await ms.token_request({**base, "code_verifier": flow["code_verifier"]})
    assert reused["error"] == "invalid_grant"
    assert reused["error_codes"] == [54005]


async def test_client_authentication_errors_are_entra_shaped(ms: MsSandboxes) -> None:
    bad_secret = await ms.token_request({"grant_type": "refresh_token", "refresh_token": "x"}, secret="wrong")
    assert bad_secret["_status"] == 401
    assert bad_secret["error"] == "invalid_client"
    assert bad_secret["error_description"].startswith("AADSTS7000215:")
    assert {"trace_id", "correlation_id", "timestamp", "error_uri"} <= set(bad_secret)
    unknown_rt = await ms.token_request({"grant_type": "refresh_token", "refresh_token": "nope", "scope": "openid"})
    assert unknown_rt["error"] == "invalid_grant"


async def test_refresh_tokens_rotate_and_each_works_for_one_resource(ms: MsSandboxes) -> None:
    first = await ms.sign_in(ALICE.upn, f"{ms.dataverse_url}/user_impersonation")
    env = ms.env_url("contosoprod")
    refreshed = await ms.token_request({
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "scope": f"{env}/.default openid profile offline_access",
    })

    assert refreshed["_status"] == 200
    assert refreshed["refresh_token"] != first["refresh_token"]
    assert refreshed["scope"] == f"{env}/user_impersonation"
    two = await ms.token_request({
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
        "scope": f"{env}/user_impersonation {ms.dataverse_url}/user_impersonation offline_access",
    })
    assert two["error"] == "invalid_scope"
    assert two["error_codes"] == [28000]
    unknown = await ms.token_request({
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
        "scope": "https://unknown.example/user_impersonation offline_access",
    })
    assert unknown["error"] == "invalid_resource"


async def test_access_tokens_expire_on_demand_and_with_the_clock(ms: MsSandboxes) -> None:
    token = await ms.token(ALICE.upn)
    assert ms.entra.verify_access_token(token, ms.dataverse_url) is not None
    ms.clock.advance(2 * 3600)
    assert ms.entra.check_access_token(token, ms.dataverse_url).problem == "The access token is expired."
    ms.clock.reset()
    ms.entra.expire_tokens()
    assert ms.entra.verify_access_token(token, ms.dataverse_url) is None


async def test_discovery_documents_and_keys(ms: MsSandboxes) -> None:
    config = (await ms.http.get(f"{ms.entra_url}/organizations/v2.0/.well-known/openid-configuration")).json()
    assert config["token_endpoint"] == f"{ms.entra_url}/organizations/oauth2/v2.0/token"
    assert config["issuer"] == f"{ms.entra_url}/{{tenantid}}/v2.0"
    tenant = (await ms.http.get(f"{ms.entra_url}/{CONTOSO.domain}/v2.0/.well-known/openid-configuration")).json()
    assert tenant["authorization_endpoint"] == f"{ms.entra_url}/{CONTOSO.id}/oauth2/v2.0/authorize"
    missing = await ms.http.get(f"{ms.entra_url}/nobody.example/v2.0/.well-known/openid-configuration")
    assert missing.status_code == 400
    assert missing.json()["error_codes"] == [90002]

    keys = (await ms.http.get(config["jwks_uri"])).json()
    token = await ms.token(ALICE.upn)
    key = jwt.PyJWK(keys["keys"][0])
    verified = jwt.decode(token, key.key, algorithms=["RS256"], audience=ms.dataverse_url)
    assert verified["upn"] == ALICE.upn

    instance = await ms.http.get(
        f"{ms.entra_url}/common/discovery/instance",
        params={"api-version": "1.0", "authorization_endpoint": f"{ms.entra_url}/organizations/oauth2/v2.0/authorize"},
    )
    assert instance.json()["tenant_discovery_endpoint"] == f"{ms.entra_url}/organizations/v2.0/.well-known/openid-configuration"


async def test_msal_can_use_the_sandbox_instance_discovery(ms: MsSandboxes) -> None:
    app = await asyncio.to_thread(
        msal.ConfidentialClientApplication, CLIENT_ID, client_credential="unused", authority=f"{ms.entra_url}/organizations",
        http_client=ms.requests_session(), instance_discovery=f"{ms.entra_url}/common/discovery/instance",
    )
    assert app.authority.token_endpoint == f"{ms.entra_url}/organizations/oauth2/v2.0/token"


async def test_sign_in_page_errors(ms: MsSandboxes) -> None:
    bad_redirect = await ms.http.get(
        f"{ms.entra_url}/organizations/oauth2/v2.0/authorize",
        params={"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": "https://evil.example/cb", "scope": "openid"},
    )
    assert bad_redirect.status_code == 400
    assert "AADSTS50011" in bad_redirect.text

    page = await ms.http.get(
        f"{ms.entra_url}/{CONTOSO.id}/oauth2/v2.0/authorize",
        params={"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT_URI,
                "scope": f"{ms.dataverse_url}/user_impersonation openid"},
    )
    form = read_form(page.text)
    wrong = await ms.http.post(ms.entra_url + form["action"], data=press(form, "Sign in", username=ALICE.upn, password="nope"))
    assert wrong.status_code == 200
    assert "Your account or password is incorrect" in wrong.text
    other_tenant = await ms.http.post(
        ms.entra_url + form["action"], data=press(form, "Sign in", username=DAVE.upn, password=DAVE.password)
    )
    assert other_tenant.status_code == 400
    assert "AADSTS50020" in other_tenant.text


async def test_control_endpoints(ms: MsSandboxes) -> None:
    token = await ms.token(ALICE.upn)
    response = await ms.http.post(f"{ms.entra_url}/_sandbox/entra/expire-tokens")
    assert response.status_code == 200
    assert ms.entra.verify_access_token(token, ms.dataverse_url) is None
    log = json.loads((await ms.http.get(f"{ms.entra_url}/_sandbox/entra/requests")).text)
    assert any(entry["grant_type"] == "authorization_code" for entry in log)
    await ms.http.post(f"{ms.entra_url}/_sandbox/entra/reset")
    assert ms.entra.requests == []
