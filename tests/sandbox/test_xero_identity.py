"""The sandbox's Xero identity service: authorize, the login and consent pages, the code exchange.

The browser flow is driven by an HTTP client that reads the pages' forms and presses their buttons by
label, as a person would (xero_identity_client.py). Tokens, refresh, revocation and connections:
test_xero_identity_tokens.py.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest

from sandbox.clock import Clock
from sandbox.xero import (
    CLIENT_ID,
    CLIENT_SECRET,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    NOORG_EMAIL,
    NOORG_PASSWORD,
    NZ_TENANT_ID,
    PKCE_CLIENT_ID,
    SINGLE_EMAIL,
    SINGLE_PASSWORD,
    UK_TENANT_ID,
    XeroSandbox,
)
from tests.sandbox.xero_identity_client import (
    BASIC,
    REDIRECT,
    SCOPE,
    authorize_params,
    exchange,
    follow,
    parse_page,
    pkce,
    press,
    sign_in_and_consent,
)


@pytest.fixture(autouse=True)
def _redirect_registered(xero: XeroSandbox) -> None:
    xero.register_redirect_uri(REDIRECT)
    xero.register_redirect_uri(REDIRECT, client_id=PKCE_CLIENT_ID)


async def test_the_whole_flow_with_pkce(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    login = await xero_http.get("/identity/connect/authorize", params=authorize_params(challenge))
    assert "Log in" in [b[0] for f in parse_page(login.text).forms for b in f.buttons]
    assert DEMO_EMAIL in login.text, "the page lists the demo accounts"
    assert DEMO_PASSWORD in login.text
    query = await sign_in_and_consent(xero_http, challenge=challenge,
                                      check={"Harbourside Trading (NZ)", "Thames Lane Studio (UK)"})
    assert query["state"] == ["st-123"]
    tokens = await exchange(xero_http, query["code"][0], verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["expires_in"] == 1800
    assert body["token_type"] == "Bearer"
    assert set(body["scope"].split()) == set(SCOPE.split())
    assert tokens.headers["Cache-Control"] == "no-store"
    jwks = (await xero_http.get("/.well-known/openid-configuration/jwks")).json()
    key = jwt.PyJWK(jwks["keys"][0]).key
    claims = jwt.decode(body["id_token"], key, algorithms=["RS256"], audience=CLIENT_ID,
                        options={"verify_exp": False, "verify_nbf": False, "verify_iat": False})
    assert claims["email"] == DEMO_EMAIL
    connections = (await xero_http.get("/connections", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert {c["tenantId"] for c in connections} == {NZ_TENANT_ID, UK_TENANT_ID}
    assert len({c["authEventId"] for c in connections}) == 1
    # The code is single-use.
    again = await exchange(xero_http, query["code"][0], verifier)
    assert again.status_code == 400
    assert again.json() == {"error": "invalid_grant"}


async def test_the_code_is_bound_to_the_pkce_verifier_and_redirect_uri(xero_http: httpx.AsyncClient) -> None:
    verifier, challenge = pkce()
    code = (await sign_in_and_consent(xero_http, challenge=challenge))["code"][0]
    assert (await exchange(xero_http, code, pkce()[0])).json() == {"error": "invalid_grant"}
    code = (await sign_in_and_consent(xero_http, challenge=challenge))["code"][0]
    assert (await exchange(xero_http, code)).json() == {"error": "invalid_grant"}, "verifier missing"
    code = (await sign_in_and_consent(xero_http, challenge=challenge))["code"][0]
    wrong = await xero_http.post("/connect/token", auth=BASIC, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "x", "code_verifier": verifier})
    assert wrong.status_code == 400
    assert wrong.json() == {"error": "invalid_grant"}


async def test_codes_live_five_minutes(xero_clock: Clock, xero_http: httpx.AsyncClient) -> None:
    code = (await sign_in_and_consent(xero_http))["code"][0]
    xero_clock.advance(301)
    assert (await exchange(xero_http, code)).json() == {"error": "invalid_grant"}


async def test_confidential_client_may_skip_pkce_and_use_form_auth(xero_http: httpx.AsyncClient) -> None:
    code = (await sign_in_and_consent(xero_http))["code"][0]
    response = await xero_http.post("/connect/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET})
    assert response.status_code == 200, response.text


async def test_pkce_app_needs_a_challenge_and_no_secret(xero_http: httpx.AsyncClient) -> None:
    no_challenge = await xero_http.get("/identity/connect/authorize",
                                       params=authorize_params(client_id=PKCE_CLIENT_ID))
    assert no_challenge.status_code == 500
    verifier, challenge = pkce()
    code = (await sign_in_and_consent(xero_http, challenge=challenge, client_id=PKCE_CLIENT_ID))["code"][0]
    response = await xero_http.post("/connect/token", data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": PKCE_CLIENT_ID,
        "code_verifier": verifier})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("override", "error"), [
    ({"client_id": "nope"}, "unauthorized_client"),
    ({"redirect_uri": "http://localhost:3978/other"}, "invalid_request"),
    ({"redirect_uri": REDIRECT + "/"}, "invalid_request"),
    ({"scope": "accounting.settings.read made.up"}, "invalid_scope"),
    ({"scope": "accounting.transactions offline_access"}, "invalid_scope"),
    ({"scope": ""}, "invalid_scope"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"code_challenge": "a" * 43, "code_challenge_method": "plain"}, "invalid_request"),
])
async def test_bad_authorize_requests_get_an_error_page_not_a_redirect(
    xero_http: httpx.AsyncClient, override: dict[str, str], error: str
) -> None:
    response = await xero_http.get("/identity/connect/authorize", params=authorize_params(**override))
    assert response.status_code == 500
    assert "Location" not in response.headers
    assert error in response.text


async def test_wrong_password_shows_the_form_again(xero_http: httpx.AsyncClient) -> None:
    login = await xero_http.get("/identity/connect/authorize", params=authorize_params())
    again = await press(xero_http, login, "Log in", fill={"Email address": DEMO_EMAIL, "Password": "wrong"})
    assert again.status_code == 200
    assert "Your email or password is incorrect" in again.text
    assert "Log in" in [b[0] for f in parse_page(again.text).forms for b in f.buttons]


async def test_cancel_sends_access_denied(xero_http: httpx.AsyncClient) -> None:
    login = await xero_http.get("/identity/connect/authorize", params=authorize_params())
    consent = await follow(xero_http, await press(xero_http, login, "Log in", fill={
        "Email address": SINGLE_EMAIL, "Password": SINGLE_PASSWORD}))
    assert "Harbourside Trading (NZ)" in consent.text
    assert "Thames Lane" not in consent.text
    back = await press(xero_http, consent, "Cancel")
    assert back.status_code == 302
    assert parse_qs(urlsplit(back.headers["Location"]).query) == {"error": ["access_denied"], "state": ["st-123"]}


async def test_a_user_without_organisations_connects_nothing(xero_http: httpx.AsyncClient) -> None:
    query = await sign_in_and_consent(xero_http, email=NOORG_EMAIL, password=NOORG_PASSWORD)
    token = (await exchange(xero_http, query["code"][0])).json()["access_token"]
    assert (await xero_http.get("/connections", headers={"Authorization": f"Bearer {token}"})).json() == []


async def test_a_signed_in_browser_goes_straight_to_consent(xero_http: httpx.AsyncClient) -> None:
    await sign_in_and_consent(xero_http)
    again = await xero_http.get("/identity/connect/authorize", params=authorize_params())
    assert "Allow access" in again.text
    assert "Log in</button>" not in again.text
    # Already connected organisations are ticked.
    assert again.text.count(" checked") == 1
