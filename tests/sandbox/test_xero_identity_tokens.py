"""The sandbox's Xero identity service after sign-in: the token endpoint, refresh rotation and expiry,
scopes, revocation and the connections API (the pages themselves: test_xero_identity.py)."""

from __future__ import annotations

import httpx
import pytest

from sandbox.clock import Clock
from sandbox.xero import (
    AU_TENANT_ID,
    CLIENT_ID,
    DEMO_EMAIL,
    NZ_TENANT_ID,
    PKCE_CLIENT_ID,
    SINGLE_EMAIL,
    XeroSandbox,
)
from tests.sandbox.xero_identity_client import (
    BASIC,
    REDIRECT,
    exchange,
    refresh,
    sign_in_and_consent,
)


@pytest.fixture(autouse=True)
def _redirect_registered(xero: XeroSandbox) -> None:
    xero.register_redirect_uri(REDIRECT)
    xero.register_redirect_uri(REDIRECT, client_id=PKCE_CLIENT_ID)


async def test_token_endpoint_errors(xero_http: httpx.AsyncClient) -> None:
    bad_secret = await xero_http.post("/connect/token", auth=httpx.BasicAuth(CLIENT_ID, "nope"),
                                      data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert bad_secret.status_code == 400
    assert bad_secret.json() == {"error": "invalid_client"}
    no_auth = await xero_http.post("/connect/token", data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert no_auth.json() == {"error": "invalid_client"}
    grant = await xero_http.post("/connect/token", auth=BASIC, data={"grant_type": "password"})
    assert grant.status_code == 400
    assert grant.json() == {"error": "unsupported_grant_type"}
    unknown = await refresh(xero_http, "not-a-token")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "invalid_grant"}


async def test_refresh_rotates_with_a_thirty_minute_grace(
    xero: XeroSandbox, xero_clock: Clock, xero_http: httpx.AsyncClient
) -> None:
    first = xero.issue_tokens(DEMO_EMAIL)
    second = (await refresh(xero_http, first["refresh_token"])).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert "id_token" in second
    # The response was "lost": the old token still works within 30 minutes, and gives a new set.
    xero_clock.advance(29 * 60)
    replay = await refresh(xero_http, first["refresh_token"])
    assert replay.status_code == 200
    assert replay.json()["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    xero_clock.advance(61)
    late = await refresh(xero_http, first["refresh_token"])
    assert late.status_code == 400
    assert late.json() == {"error": "invalid_grant"}
    # The newer ones are still good.
    assert (await refresh(xero_http, second["refresh_token"])).status_code == 200


async def test_refresh_tokens_die_after_sixty_idle_days(
    xero: XeroSandbox, xero_clock: Clock, xero_http: httpx.AsyncClient
) -> None:
    tokens = xero.issue_tokens(DEMO_EMAIL)
    xero_clock.advance(59 * 86400)
    tokens = (await refresh(xero_http, tokens["refresh_token"])).json()
    xero_clock.advance(59 * 86400)
    assert (await refresh(xero_http, tokens["refresh_token"])).status_code == 200, "each use restarts the 60 days"
    idle = xero.issue_tokens(DEMO_EMAIL)
    xero_clock.advance(60 * 86400 + 1)
    assert (await refresh(xero_http, idle["refresh_token"])).json() == {"error": "invalid_grant"}


async def test_refresh_by_another_client_fails(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    tokens = xero.issue_tokens(DEMO_EMAIL)
    response = await xero_http.post("/connect/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], "client_id": PKCE_CLIENT_ID})
    assert response.json() == {"error": "invalid_grant"}


async def test_id_token_only_with_openid_and_refresh_only_with_offline_access(
    xero: XeroSandbox, xero_http: httpx.AsyncClient
) -> None:
    query = await sign_in_and_consent(xero_http, scope="offline_access accounting.settings.read")
    body = (await exchange(xero_http, query["code"][0])).json()
    assert "id_token" not in body
    assert "refresh_token" in body
    online = xero.issue_tokens(SINGLE_EMAIL, scope="accounting.settings.read")
    assert "refresh_token" not in online
    assert "id_token" not in online


async def test_scopes_accumulate_until_revocation(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    xero.issue_tokens(DEMO_EMAIL, scope="offline_access accounting.settings.read")
    later = xero.issue_tokens(DEMO_EMAIL, scope="offline_access accounting.contacts.read")
    assert {"accounting.settings.read", "accounting.contacts.read"} <= set(later["scope"].split())
    revoked = await xero_http.post("/connect/revocation", auth=BASIC, data={"token": later["refresh_token"]})
    assert revoked.status_code == 200
    fresh = xero.issue_tokens(DEMO_EMAIL, scope="offline_access accounting.contacts.read")
    assert "accounting.settings.read" not in fresh["scope"].split()


async def test_revocation_kills_the_family_and_the_connections(
    xero: XeroSandbox, xero_http: httpx.AsyncClient
) -> None:
    tokens = xero.issue_tokens(DEMO_EMAIL)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    bad = await xero_http.post("/connect/revocation", auth=httpx.BasicAuth(CLIENT_ID, "x"),
                               data={"token": tokens["refresh_token"]})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_client"}
    response = await xero_http.post("/connect/revocation", auth=BASIC, data={"token": tokens["refresh_token"]})
    assert response.status_code == 200
    assert (await refresh(xero_http, tokens["refresh_token"])).json() == {"error": "invalid_grant"}
    assert (await xero_http.get("/connections", headers=bearer)).json() == []
    api = await xero_http.get("/api.xro/2.0/Organisation",
                              headers={**bearer, "xero-tenant-id": NZ_TENANT_ID, "Accept": "application/json"})
    assert api.status_code == 403
    unknown = await xero_http.post("/connect/revocation", auth=BASIC, data={"token": "whatever"})
    assert unknown.status_code == 200


async def test_connections_filter_and_delete(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    first = xero.issue_tokens(DEMO_EMAIL, tenant_ids=[NZ_TENANT_ID])
    second = xero.issue_tokens(DEMO_EMAIL, tenant_ids=[AU_TENANT_ID])
    bearer = {"Authorization": f"Bearer {first['access_token']}"}
    everything = (await xero_http.get("/connections", headers=bearer)).json()
    assert {c["tenantId"] for c in everything} == {NZ_TENANT_ID, AU_TENANT_ID}, "a token covers later consents"
    au = next(c for c in everything if c["tenantId"] == AU_TENANT_ID)
    filtered = await xero_http.get("/connections", headers=bearer, params={"authEventId": au["authEventId"]})
    assert [c["tenantId"] for c in filtered.json()] == [AU_TENANT_ID]
    assert filtered.headers["X-AppMinLimit-Remaining"].isdigit()
    assert "X-MinLimit-Remaining" not in filtered.headers
    deleted = await xero_http.delete(f"/connections/{au['id']}", headers=bearer)
    assert deleted.status_code == 204
    assert (await xero_http.delete(f"/connections/{au['id']}", headers=bearer)).status_code == 404
    assert (await xero_http.delete(f"/connections/{AU_TENANT_ID}", headers=bearer)).status_code == 404
    api = await xero_http.get("/api.xro/2.0/Organisation", headers={
        "Authorization": f"Bearer {second['access_token']}", "xero-tenant-id": AU_TENANT_ID,
        "Accept": "application/json"})
    assert api.status_code == 403
    assert (await xero_http.get("/connections")).status_code == 401


async def test_reconnecting_keeps_the_connection_and_updates_it(
    xero: XeroSandbox, xero_clock: Clock, xero_http: httpx.AsyncClient
) -> None:
    xero.issue_tokens(SINGLE_EMAIL)
    xero_clock.advance(3600)
    token = xero.issue_tokens(SINGLE_EMAIL)["access_token"]
    [conn] = (await xero_http.get("/connections", headers={"Authorization": f"Bearer {token}"})).json()
    assert conn["createdDateUtc"] < conn["updatedDateUtc"]
