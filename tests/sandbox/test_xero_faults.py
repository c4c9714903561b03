"""Fault switches, request recording, reset and the control API over HTTP."""

from __future__ import annotations

import time

import httpx
import pytest

from sandbox.xero import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_EMAIL,
    NZ_ORG_NAME,
    NZ_TENANT_ID,
    SINGLE_EMAIL,
    UK_TENANT_ID,
    XeroSandbox,
    stable_id,
)

ACCOUNTS = "/api.xro/2.0/Accounts"


def headers(token: str, tenant: str = NZ_TENANT_ID) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}


async def test_fail_next(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    xero.fail_next(2, 429, retry_after=7, path_prefix="/api.xro/2.0/accounts")
    xero.fail_next(1, 503)
    org = await xero_http.get("/api.xro/2.0/Organisation", headers=headers(token))
    assert org.status_code == 503, "the 429s only match the Accounts prefix"
    for _ in range(2):
        limited = await xero_http.get(ACCOUNTS, headers=headers(token))
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "7"
        assert limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert (await xero_http.get(ACCOUNTS, headers=headers(token))).status_code == 200
    xero.fail_next(1, 500, path_prefix="/connect/token")
    token_error = await xero_http.post("/connect/token", auth=(CLIENT_ID, CLIENT_SECRET),
                                       data={"grant_type": "refresh_token", "refresh_token": "x"})
    assert token_error.status_code == 500
    assert token_error.json() == {"error": "server_error"}
    with pytest.raises(ValueError, match="error status"):
        xero.fail_next(1, 200)


async def test_drop_next_closes_the_connection(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    xero.drop_next(1)
    with pytest.raises(httpx.RemoteProtocolError):
        await xero_http.get(ACCOUNTS, headers=headers(token))
    assert (await xero_http.get(ACCOUNTS, headers=headers(token))).status_code == 200
    assert [r.status for r in xero.requests] == [0, 200]


async def test_latency(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    xero.set_latency(0.2)
    started = time.monotonic()
    await xero_http.get("/connections")
    assert time.monotonic() - started >= 0.2


async def test_requests_are_recorded_without_secrets(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    tokens = xero.issue_tokens(DEMO_EMAIL)
    await xero_http.get(ACCOUNTS, headers=headers(tokens["access_token"], UK_TENANT_ID),
                        params={"where": 'Type=="BANK"'})
    await xero_http.post("/connect/token", auth=(CLIENT_ID, CLIENT_SECRET),
                         data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    await xero_http.get("/_sandbox/xero/requests")
    api, token = xero.requests
    assert (api.method, api.path, api.status, api.tenant) == ("GET", ACCOUNTS, 200, UK_TENANT_ID)
    assert api.query == {"where": 'Type=="BANK"'}
    assert api.headers["Authorization"] == "Bearer <redacted>"
    assert token.form == {"grant_type": "refresh_token", "refresh_token": "<redacted>"}
    assert token.headers["Authorization"] == "Basic <redacted>"
    everything = repr(xero.requests)
    assert tokens["access_token"] not in everything
    assert tokens["refresh_token"] not in everything
    assert CLIENT_SECRET not in everything


async def test_reset_goes_back_to_the_seed(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    xero.register_redirect_uri("http://localhost:1/cb")
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    xero.rename_account(NZ_TENANT_ID, stable_id(NZ_TENANT_ID, "account", "200"), "Renamed")
    generated = xero.generate_org("Bench", accounts=100)
    xero.fail_next(5, 500)
    xero.reset()
    assert xero.requests == []
    assert generated not in xero.tenants_for(DEMO_EMAIL)
    assert any(a["Name"] == "Sales" for a in xero.accounts(NZ_TENANT_ID))
    assert (await xero_http.get(ACCOUNTS, headers=headers(token))).status_code == 401
    assert "http://localhost:1/cb" in xero.identity.apps[CLIENT_ID].redirect_uris


async def test_control_api_over_http(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    base = "/_sandbox/xero"
    summary = (await xero_http.get(base)).json()
    assert NZ_ORG_NAME in [t["name"] for t in summary["tenants"]]
    assert (await xero_http.post(f"{base}/redirect-uris", json={"uri": "https://bot.example/cb"})).status_code == 200
    assert (await xero_http.post(f"{base}/redirect-uris", json={"uri": "http://bot.example/cb"})).status_code == 400
    created = await xero_http.post(f"{base}/tenants/{NZ_TENANT_ID}/accounts",
                                   json={"Code": "299", "Name": "Grants", "Type": "OTHERINCOME"})
    assert created.status_code == 201
    account_id = created.json()["AccountID"]
    assert (await xero_http.patch(f"{base}/tenants/{NZ_TENANT_ID}/accounts/{account_id}",
                                  json={"Name": "Government Grants"})).status_code == 200
    assert (await xero_http.post(f"{base}/tenants/{NZ_TENANT_ID}/accounts/{account_id}/archive")).status_code == 200
    listed = (await xero_http.get(f"{base}/tenants/{NZ_TENANT_ID}/accounts")).json()
    assert {"Name": "Government Grants", "Status": "ARCHIVED"}.items() <= next(
        a for a in listed if a["AccountID"] == account_id).items()
    duplicate = await xero_http.post(f"{base}/tenants/{NZ_TENANT_ID}/accounts",
                                     json={"Code": "299", "Name": "Other", "Type": "OTHERINCOME"})
    assert duplicate.status_code == 400
    assert "unique Code" in duplicate.json()["error"]
    assert (await xero_http.delete(f"{base}/tenants/{NZ_TENANT_ID}/accounts/{account_id}")).status_code == 200
    assert (await xero_http.get(f"{base}/tenants/{stable_id('x')}/accounts")).status_code == 404
    rate = await xero_http.post(f"{base}/tenants/{NZ_TENANT_ID}/tax-rates", json={
        "Name": "Levy", "ReportTaxType": "OUTPUT", "TaxComponents": [{"Name": "Levy", "Rate": 2}]})
    assert rate.json() == {"TaxType": "TAX004"}
    theme = await xero_http.post(f"{base}/tenants/{NZ_TENANT_ID}/branding-themes", json={"Name": "Quotes"})
    assert theme.status_code == 201
    generated = await xero_http.post(f"{base}/orgs", json={"name": "Big NZ", "accounts": 500})
    tenant = generated.json()["tenantId"]
    assert tenant in (await xero_http.get(f"{base}/users/{DEMO_EMAIL}/tenants")).json()
    tokens = (await xero_http.post(f"{base}/users/{SINGLE_EMAIL}/tokens", json={})).json()
    assert tokens["token_type"] == "Bearer"
    [connection] = (await xero_http.get(f"{base}/users/{SINGLE_EMAIL}/connections")).json()
    assert connection["tenantId"] == NZ_TENANT_ID
    disconnected = await xero_http.post(f"{base}/users/{SINGLE_EMAIL}/disconnect", json={"tenant_id": NZ_TENANT_ID})
    assert disconnected.status_code == 200
    assert (await xero_http.get(f"{base}/users/{SINGLE_EMAIL}/connections")).json() == []
    assert (await xero_http.post(f"{base}/faults/fail", json={"n": 1, "status": 502})).status_code == 200
    assert (await xero_http.get("/connections")).status_code == 502
    assert (await xero_http.post(f"{base}/faults/drop", json={"n": 1})).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        await xero_http.get("/connections")
    assert (await xero_http.post(f"{base}/latency", json={"seconds": 0})).status_code == 200
    assert (await xero_http.post(f"{base}/expire-access-tokens")).status_code == 200
    assert (await xero_http.post(f"{base}/users/{SINGLE_EMAIL}/revoke")).status_code == 200
    recorded = (await xero_http.get(f"{base}/requests")).json()
    assert [r["status"] for r in recorded] == [502, 0]
    assert (await xero_http.post(f"{base}/reset")).status_code == 200
    assert tenant not in xero.orgs
