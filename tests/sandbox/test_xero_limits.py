"""Rate limits of the sandbox's Accounting API: per tenant minute, day and concurrency, per app minute."""

from __future__ import annotations

import asyncio

import httpx

from sandbox.clock import Clock
from sandbox.xero import AU_TENANT_ID, DEMO_EMAIL, NZ_TENANT_ID, UK_TENANT_ID, XeroSandbox

ORG = "/api.xro/2.0/Organisation"


def headers(token: str, tenant: str = NZ_TENANT_ID) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "xero-tenant-id": tenant, "Accept": "application/json"}


async def test_sixty_calls_a_minute_per_tenant(
    xero: XeroSandbox, xero_clock: Clock, xero_http: httpx.AsyncClient
) -> None:
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    for n in range(60):
        response = await xero_http.get(ORG, headers=headers(token))
        assert response.status_code == 200
        assert response.headers["X-MinLimit-Remaining"] == str(59 - n)
        assert response.headers["X-DayLimit-Remaining"] == str(4999 - n)
        assert response.headers["X-AppMinLimit-Remaining"] == str(9999 - n)
    xero_clock.advance(10)
    refused = await xero_http.get(ORG, headers=headers(token))
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 45 <= int(refused.headers["Retry-After"]) <= 51
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    # Another tenant has its own minute.
    assert (await xero_http.get(ORG, headers=headers(token, AU_TENANT_ID))).status_code == 200
    xero_clock.advance(int(refused.headers["Retry-After"]))
    assert (await xero_http.get(ORG, headers=headers(token))).status_code == 200


async def test_day_limit(xero: XeroSandbox, xero_clock: Clock, xero_http: httpx.AsyncClient) -> None:
    xero.limiter.daily = 3
    for _ in range(3):
        token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
        assert (await xero_http.get(ORG, headers=headers(token))).status_code == 200
        xero_clock.advance(3600)
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    refused = await xero_http.get(ORG, headers=headers(token))
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "day"
    assert int(refused.headers["Retry-After"]) == 21 * 3600
    assert refused.headers["X-DayLimit-Remaining"] == "0"
    xero_clock.advance(21 * 3600)
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    assert (await xero_http.get(ORG, headers=headers(token))).status_code == 200


async def test_app_minute_limit_spans_tenants(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    xero.limiter.app_minute = 4
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    for tenant in (NZ_TENANT_ID, AU_TENANT_ID, UK_TENANT_ID, NZ_TENANT_ID):
        assert (await xero_http.get(ORG, headers=headers(token, tenant))).status_code == 200
    refused = await xero_http.get(ORG, headers=headers(token, UK_TENANT_ID))
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "appminute"
    assert refused.headers["X-AppMinLimit-Remaining"] == "0"


async def test_five_concurrent_calls_per_tenant(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    token = xero.issue_tokens(DEMO_EMAIL)["access_token"]
    xero.set_latency(0.3)
    responses = await asyncio.gather(*(xero_http.get(ORG, headers=headers(token)) for _ in range(7)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 2
    refused = next(r for r in responses if r.status_code == 429)
    assert refused.headers["X-Rate-Limit-Problem"] == "concurrent"
    assert refused.headers["Retry-After"] == "1"
    xero.set_latency(0)
    assert (await xero_http.get(ORG, headers=headers(token))).status_code == 200, "slots are given back"
