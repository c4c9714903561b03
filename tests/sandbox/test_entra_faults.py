"""The Entra sandbox's outage switch (`fail_next`): the answer on the wire, and what real MSAL makes of it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msal
import pytest
from msal.exceptions import MsalServiceError

from sandbox.entra import ALICE, CLIENT_ID, CLIENT_SECRET
from tests.sandbox.conftest_ms import REDIRECT_URI, MsSandboxes, running_ms_sandboxes


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def _connect(ms: MsSandboxes) -> tuple[msal.ConfidentialClientApplication, dict[str, Any]]:
    app = await asyncio.to_thread(ms.msal_app, msal.SerializableTokenCache())
    flow = await asyncio.to_thread(
        app.initiate_auth_code_flow, [f"{ms.dataverse_url}/user_impersonation"], redirect_uri=REDIRECT_URI
    )
    query = await ms.browse_sign_in(flow["auth_uri"], ALICE.upn)
    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, query)
    assert "access_token" in result, result
    account = (await asyncio.to_thread(app.get_accounts))[0]
    return app, account


def _refresh_statuses(ms: MsSandboxes) -> list[int]:
    return [r.status for r in ms.entra.requests if r.grant_type == "refresh_token"]


async def test_an_outage_answers_503_temporarily_unavailable_and_leaves_the_refresh_token_usable(
    ms: MsSandboxes,
) -> None:
    signed_in = await ms.sign_in(ALICE.upn, f"{ms.dataverse_url}/user_impersonation")
    ms.entra.fail_next(1, 503, retry_after=30)
    form = {
        "grant_type": "refresh_token",
        "refresh_token": signed_in["refresh_token"],
        "scope": f"{ms.env_url('contosoprod')}/user_impersonation openid offline_access",
    }

    failed = await ms.http.post(
        f"{ms.entra_url}/organizations/oauth2/v2.0/token",
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form},
        headers={"client-request-id": "11111111-2222-3333-4444-555555555555"},
    )

    assert failed.status_code == 503
    assert failed.headers["Retry-After"] == "30"
    assert failed.headers["Cache-Control"] == "no-store, no-cache"
    body = failed.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["error_codes"] == [90033]
    assert body["error_description"].startswith("AADSTS90033: A transient error has occurred. Please try again.")
    assert body["correlation_id"] == "11111111-2222-3333-4444-555555555555"
    assert {"timestamp", "trace_id", "error_uri"} <= body.keys()
    # Nothing was redeemed: the same refresh token works once Entra answers again.
    again = await ms.token_request(form)
    assert again["_status"] == 200, again
    assert _refresh_statuses(ms) == [503, 200]


async def test_msal_raises_on_the_outage_and_refreshes_once_entra_answers(ms: MsSandboxes) -> None:
    app, account = await _connect(ms)
    scope = [f"{ms.env_url('contosoprod')}/user_impersonation"]
    # Retry-After: 0, or MSAL would replay the 503 from its throttle cache for 5 s (next test).
    ms.entra.fail_next(2, 503, retry_after=0)

    for _ in range(2):
        # No error dict: MSAL raises for any 5xx of the token endpoint, without reading the body.
        with pytest.raises(MsalServiceError, match=r"^HTTP Error: 503$"):
            await asyncio.to_thread(app.acquire_token_silent_with_error, scope, account, force_refresh=True)

    assert ms.entra.faults.pending == 0
    result = await asyncio.to_thread(app.acquire_token_silent_with_error, scope, account, force_refresh=True)
    assert result is not None
    assert "access_token" in result, result
    assert result["token_source"] == "identity_provider"
    assert _refresh_statuses(ms) == [503, 503, 200]


async def test_msal_replays_an_outage_without_retry_after_from_its_own_cache(ms: MsSandboxes) -> None:
    app, account = await _connect(ms)
    scope = [f"{ms.env_url('contosoprod')}/user_impersonation"]
    ms.entra.fail_next(1, 503)

    with pytest.raises(MsalServiceError):
        await asyncio.to_thread(app.acquire_token_silent_with_error, scope, account, force_refresh=True)
    # Entra answers again, but for 5 s MSAL answers the identical request itself: nothing reaches Entra.
    with pytest.raises(MsalServiceError):
        await asyncio.to_thread(app.acquire_token_silent_with_error, scope, account, force_refresh=True)

    assert _refresh_statuses(ms) == [503]
    # Another scope is another request: it goes through.
    other = await asyncio.to_thread(
        app.acquire_token_silent_with_error, [f"{ms.dataverse_url}/user_impersonation"], account, force_refresh=True
    )
    assert other is not None
    assert "access_token" in other, other


async def test_the_control_api_sets_a_fault_under_a_path_prefix_and_reset_clears_it(ms: MsSandboxes) -> None:
    control = f"{ms.entra_url}/_sandbox/entra"
    discovery = f"{ms.entra_url}/organizations/v2.0/.well-known/openid-configuration"

    refused = await ms.http.post(f"{control}/fail-next", json={"n": 1, "status": 400})
    assert refused.status_code == 400
    set_ = await ms.http.post(
        f"{control}/fail-next", json={"n": 2, "status": 500, "path_prefix": "/organizations/v2.0/.well-known"}
    )
    assert set_.json() == {"ok": True, "pending": 2}

    failed = await ms.http.get(discovery)
    assert failed.status_code == 500
    assert failed.json()["error"] == "temporarily_unavailable"
    assert "Retry-After" not in failed.headers
    # Only that path: the token endpoint still answers (here, a refusal of a made-up refresh token).
    token = await ms.token_request({"grant_type": "refresh_token", "refresh_token": "nope", "scope": "openid"})
    assert token["_status"] == 400
    assert ms.entra.faults.pending == 1

    assert (await ms.http.post(f"{control}/clear-faults")).json() == {"ok": True}
    assert (await ms.http.get(discovery)).status_code == 200
    ms.entra.fail_next(3, 503)
    ms.entra.reset()
    assert ms.entra.faults.pending == 0
    with pytest.raises(ValueError, match="n >= 1"):
        ms.entra.fail_next(0, 503)
    with pytest.raises(ValueError, match="5xx status"):
        ms.entra.fail_next(1, 429)
