"""Entra's sign-in pages over plain http on localhost, for browsers; everything MSAL calls stays on TLS.

A browser that trusts nothing but the public roots (as a person's does) signs in on the http pages
with no certificate error, while real, unchanged MSAL builds its auth URL from the discovery document
and redeems the code over TLS with the local CA.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import msal
import pytest
import requests

from sandbox.entra import ALICE, CLIENT_ID, CLIENT_SECRET
from sandbox.runner import Sandboxes
from tests.sandbox.conftest_ms import press, read_form

BOT = "http://localhost:3978"
REDIRECT_URI = f"{BOT}/oauth/dynamics/callback"


@pytest.fixture
async def sandboxes(tmp_path: Path) -> AsyncIterator[Sandboxes]:
    async with Sandboxes(tmp_path, entra_pages_port=0) as running:
        running.register_bot(BOT)
        yield running


def _msal_app(sandboxes: Sandboxes) -> msal.ConfidentialClientApplication:
    assert sandboxes.ca is not None
    session = requests.Session()
    session.verify = str(sandboxes.ca.ca_bundle_path)
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace `verify`
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=CLIENT_SECRET,
        authority=f"{sandboxes.entra_url}/organizations",
        http_client=session,
        instance_discovery=False,
    )


async def _browse(browser: httpx.AsyncClient, auth_uri: str) -> dict[str, str]:
    """Sign in as Alice and accept, as a person does; the query of the redirect to the bot."""
    page = await browser.get(auth_uri)
    assert page.status_code == 200, page.text[:300]
    form = read_form(page.text)
    url = urljoin(auth_uri, form["action"])
    assert url.startswith("http://"), "the login form must post to the page's own (http) origin"
    response = await browser.post(url, data=press(form, "Sign in", username=ALICE.upn, password=ALICE.password))
    if response.status_code == 200:
        consent = read_form(response.text)
        response = await browser.post(urljoin(auth_uri, consent["action"]), data=press(consent, "Accept"))
    assert response.status_code == 302, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI)
    return dict(httpx.URL(location).params)


async def test_msal_sends_the_browser_to_the_http_pages_and_redeems_over_tls(sandboxes: Sandboxes) -> None:
    pages = sandboxes.entra_pages_url
    assert urlsplit(pages).scheme == "http"
    assert urlsplit(sandboxes.entra_url).scheme == "https"
    app = await asyncio.to_thread(_msal_app, sandboxes)
    assert app.authority.token_endpoint.startswith(f"{sandboxes.entra_url}/")
    scope = [f"{sandboxes.dataverse_url}/user_impersonation"]
    flow = await asyncio.to_thread(app.initiate_auth_code_flow, scope, redirect_uri=REDIRECT_URI)
    assert flow["auth_uri"].startswith(f"{pages}/organizations/oauth2/v2.0/authorize?")

    # Public roots only (certifi), like a person's browser: the local CA is not trusted.
    async with httpx.AsyncClient(trust_env=False, timeout=30) as browser:
        with pytest.raises(httpx.ConnectError):
            await browser.get(f"{sandboxes.entra_url}/organizations/v2.0/.well-known/openid-configuration")
        query = await _browse(browser, flow["auth_uri"])

    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, query)
    assert "access_token" in result, result
    assert result["id_token_claims"]["preferred_username"] == ALICE.upn
    # The code went over TLS: the token request reached the https origin, nothing secret the http one.
    token_calls = [r for r in sandboxes.entra.requests if r.path.endswith("/token")]
    assert [r.status for r in token_calls] == [200]


async def test_the_http_origin_serves_only_the_pages(sandboxes: Sandboxes) -> None:
    pages = sandboxes.entra_pages_url
    async with httpx.AsyncClient(trust_env=False, timeout=30) as browser:
        discovery = await browser.get(f"{pages}/organizations/v2.0/.well-known/openid-configuration")
        token = await browser.post(f"{pages}/organizations/oauth2/v2.0/token", data={"grant_type": "refresh_token"})
        keys = await browser.get(f"{pages}/organizations/discovery/v2.0/keys")
    assert discovery.status_code == 404
    assert token.status_code in (404, 405)
    assert keys.status_code == 404


async def test_without_a_pages_origin_discovery_points_at_the_tls_origin(tmp_path: Path) -> None:
    async with Sandboxes(tmp_path) as running:
        assert running.entra_pages_url == ""
        assert running.ca is not None
        async with httpx.AsyncClient(verify=running.ca.client_ssl_context(), trust_env=False) as client:
            config = (await client.get(f"{running.entra_url}/organizations/v2.0/.well-known/openid-configuration")).json()
    assert config["authorization_endpoint"] == f"{running.entra_url}/organizations/oauth2/v2.0/authorize"


def test_pages_in_clear_only_on_loopback() -> None:
    from sandbox.clock import Clock
    from sandbox.entra import EntraSandbox

    entra = EntraSandbox(Clock())
    with pytest.raises(ValueError, match="localhost"):
        entra.set_pages_url("http://sandbox.example.org:3982")
    entra.set_pages_url("http://127.0.0.1:3982/")
    assert entra.pages_base_url == "http://127.0.0.1:3982"
