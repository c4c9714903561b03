"""XeroClient against the Xero sandbox: data, 401 refresh, 429, 5xx and drops, If-Modified-Since, pacing.

Everything runs on the sandbox's clock: the client's sleeps (backoff, Retry-After, pacing) move that
clock instead of waiting, so minutes of Xero time pass in milliseconds and the sandbox's own rate
windows see exactly the timing the client chose. `harness` holds the fixtures and the consent flow.
"""

# The fixtures come from the harness module: importing them is how pytest finds them, and the tests
# naming them as arguments is what ruff reads as redefinitions.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.errors import AuthError, PermissionDenied, RateLimited
from bot.sync.ratelimit import TenantLimiter
from bot.sync.xero import XeroClient
from bot.sync.xero_models import AccountType
from sandbox.xero.seed import AU_TENANT_ID, DEMO_EMAIL, NZ_TENANT_ID
from tests.integration.test_xero_client_harness import CONNECTION, World, connected, world  # noqa: F401

pytestmark = pytest.mark.usefixtures("connected")


async def test_reads_the_settings_resources(world: World) -> None:
    org = await world.client.organisation(CONNECTION, NZ_TENANT_ID)
    expected_org = world.sandbox.organisation(NZ_TENANT_ID)
    assert (org.organisation_id, org.name, org.base_currency) == (
        expected_org["OrganisationID"], expected_org["Name"], expected_org["BaseCurrency"])
    assert org.iana_timezone == "Pacific/Auckland"

    accounts = await world.client.accounts(CONNECTION, NZ_TENANT_ID)
    expected = world.sandbox.accounts(NZ_TENANT_ID)
    assert [a.account_id for a in accounts] == [e["AccountID"] for e in expected]
    assert any(a.type == AccountType.BANK for a in accounts)
    assert all(a.updated_date_utc is not None for a in accounts)

    rates = await world.client.tax_rates(CONNECTION, NZ_TENANT_ID)
    expected_rates = {r["TaxType"]: r for r in world.sandbox.tax_rates(NZ_TENANT_ID)}
    assert {r.tax_type for r in rates} == set(expected_rates)
    for rate in rates:
        assert isinstance(rate.effective_rate, Decimal)
        assert rate.effective_rate == expected_rates[rate.tax_type]["EffectiveRate"]

    themes = await world.client.branding_themes(CONNECTION, NZ_TENANT_ID)
    assert [t.branding_theme_id for t in themes] == [
        t["BrandingThemeID"] for t in world.sandbox.branding_themes(NZ_TENANT_ID)
    ]

    assert world.client.calls == 4
    assert world.client.day_remaining(NZ_TENANT_ID) == 5000 - 4
    for request in world.api_requests():
        assert request.headers["Accept"] == "application/json"
        assert request.headers["xero-tenant-id"] == NZ_TENANT_ID
        assert request.headers["Authorization"].startswith("Bearer")


async def test_counts_calls_per_run(world: World) -> None:
    run = world.client.for_run()
    await run.tax_rates(CONNECTION, NZ_TENANT_ID)
    await run.branding_themes(CONNECTION, NZ_TENANT_ID)
    assert run.calls == 2
    assert world.client.calls == 0


async def test_if_modified_since_returns_only_changed_accounts(world: World) -> None:
    everything = await world.client.accounts(CONNECTION, NZ_TENANT_ID)
    last_run = world.clock.now()
    world.clock.advance(3600)
    target = everything[3]
    world.sandbox.rename_account(NZ_TENANT_ID, target.account_id, "Renamed by the test")

    changed = await world.client.accounts(CONNECTION, NZ_TENANT_ID, modified_since=last_run)

    assert [(a.account_id, a.name) for a in changed] == [(target.account_id, "Renamed by the test")]
    sent = world.api_requests()[-1].headers["If-Modified-Since"]
    assert sent == (last_run - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    # The overlap asks a minute further back: a change just before the last run is seen again...
    now = world.clock.now()
    assert len(await world.client.accounts(CONNECTION, NZ_TENANT_ID, modified_since=now)) == 1
    # ...and nothing once it is older than that.
    world.clock.advance(120)
    assert await world.client.accounts(CONNECTION, NZ_TENANT_ID, modified_since=world.clock.now()) == []


async def test_expired_access_token_mid_run_is_refreshed_once(world: World) -> None:
    await world.client.tax_rates(CONNECTION, NZ_TENANT_ID)
    world.sandbox.expire_access_tokens()

    accounts = await world.client.accounts(CONNECTION, NZ_TENANT_ID)

    assert accounts
    assert len(world.refresh_requests()) == 1
    assert [r.status for r in world.api_requests()] == [200, 401, 200]
    assert world.client.calls == 3


async def test_a_second_401_after_refreshing_is_raised(world: World) -> None:
    world.sandbox.fail_next(2, 401, path_prefix="/api.xro")
    with pytest.raises(AuthError) as info:
        await world.client.accounts(CONNECTION, NZ_TENANT_ID)
    assert not info.value.reconnect_required
    assert len(world.refresh_requests()) == 1
    assert len(world.api_requests()) == 2


async def test_429_waits_exactly_retry_after(world: World) -> None:
    world.sandbox.fail_next(1, 429, retry_after=1, path_prefix="/api.xro", problem="minute")
    rates = await world.client.tax_rates(CONNECTION, NZ_TENANT_ID)
    assert rates
    assert world.sleeps == [1.0]
    assert [r.status for r in world.api_requests()] == [429, 200]


async def test_429_beyond_the_cap_raises_and_pauses_the_tenant(world: World) -> None:
    world.sandbox.fail_next(1, 429, retry_after=18 * 3600, path_prefix="/api.xro", problem="day")
    with pytest.raises(RateLimited) as info:
        await world.client.accounts(CONNECTION, NZ_TENANT_ID)
    assert info.value.problem == "day"
    assert info.value.retry_after == 18 * 3600
    # Other calls for the tenant fail at once, without spending Xero calls; other tenants are free.
    with pytest.raises(RateLimited):
        await world.client.tax_rates(CONNECTION, NZ_TENANT_ID)
    assert len(world.api_requests()) == 1
    assert await world.client.tax_rates(CONNECTION, AU_TENANT_ID)


async def test_5xx_and_dropped_connections_are_retried(world: World) -> None:
    world.sandbox.fail_next(2, 503, path_prefix="/api.xro")
    world.sandbox.drop_next(1, path_prefix="/api.xro")
    world.sandbox.fail_next(1, 500, path_prefix="/api.xro")
    themes = await world.client.branding_themes(CONNECTION, NZ_TENANT_ID)
    assert themes
    assert [r.status for r in world.api_requests()] == [503, 503, 0, 500, 200]
    assert len(world.sleeps) == 4
    assert world.client.calls == 5


async def test_disconnected_tenant_is_permission_denied(world: World) -> None:
    world.sandbox.disconnect(DEMO_EMAIL, NZ_TENANT_ID)
    with pytest.raises(PermissionDenied) as info:
        await world.client.organisation(CONNECTION, NZ_TENANT_ID)
    assert info.value.code == "AuthenticationUnsuccessful"
    assert world.refresh_requests() == []


async def test_concurrent_calls_stay_within_five_in_flight(world: World) -> None:
    world.sandbox.set_latency(0.05)  # real time: calls overlap on the wire
    results = await asyncio.gather(*(world.client.tax_rates(CONNECTION, NZ_TENANT_ID) for _ in range(12)))
    assert all(results)
    assert {r.status for r in world.api_requests()} == {200}


@pytest.mark.parametrize("world", [{"minute_limit": 10}], indirect=True)
async def test_pacing_keeps_under_the_minute_limit_without_429(world: World) -> None:
    client = XeroClient(world.settings, world.http, world.tokens,
                        TenantLimiter(per_minute=9, clock=world.clock.time, sleep=world.sleep))
    for _ in range(30):
        await client.branding_themes(CONNECTION, NZ_TENANT_ID)
    requests = world.api_requests()
    assert [r.status for r in requests] == [200] * 30
    # The sandbox stamps arrival times, a few real milliseconds after the limiter's start times: the
    # one call of headroom (9 of 10) is what absorbs that, as 55 of 60 does in production.
    times = [r.time for r in requests]
    for i, start in enumerate(times):
        assert len([t for t in times[i:] if t < start + 60]) <= 10
    assert times[-1] - times[0] >= 3 * 60  # 30 calls at 9 a minute span over three minutes
