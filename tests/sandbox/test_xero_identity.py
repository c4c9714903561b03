"""The sandbox's Xero identity service: authorize, the login and consent pages, tokens, connections.

The browser flow is driven by an HTTP client that reads the pages' forms and presses their buttons by
label, as a person would.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import jwt
import pytest

from sandbox.clock import Clock
from sandbox.xero import (
    AU_TENANT_ID,
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

REDIRECT = "http://localhost:3978/oauth/xero/callback"
SCOPE = "openid profile email offline_access accounting.settings.read"
BASIC = httpx.BasicAuth(CLIENT_ID, CLIENT_SECRET)


@dataclass
class Form:
    action: str
    fields: list[tuple[str, str, str, bool]] = field(default_factory=list)  # name, value, type, checked
    buttons: list[tuple[str, str, str]] = field(default_factory=list)  # label, name, value
    labels: dict[str, str] = field(default_factory=dict)  # input id -> label text


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._button: dict[str, str] | None = None
        self._label_for: str | None = None
        self._ids: dict[str, str] = {}
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        elif tag == "input" and self.forms:
            self.forms[-1].fields.append((a.get("name", ""), a.get("value", ""), a.get("type", "text"),
                                          "checked" in a))
            self._ids[a.get("id", "")] = a.get("name", "") + "=" + a.get("value", "")
        elif tag == "button":
            self._button = {**a, "label": ""}
        elif tag == "label":
            self._label_for = a.get("for")

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._button is not None:
            self._button["label"] += data
        if self._label_for is not None and self.forms:
            self.forms[-1].labels[self._label_for] = self.forms[-1].labels.get(self._label_for, "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            b = self._button
            self.forms[-1].buttons.append((b["label"].strip(), b.get("name", ""), b.get("value", "")))
            self._button = None
        elif tag == "label":
            self._label_for = None


def parse_page(html: str) -> _FormParser:
    parser = _FormParser()
    parser.feed(html)
    return parser


async def press(client: httpx.AsyncClient, page: httpx.Response, button: str, *, fill: dict[str, str] | None = None,
                check: set[str] | None = None) -> httpx.Response:
    """Fill text inputs by label, set checkboxes by label (None keeps them), press the button by its text."""
    parsed = parse_page(page.text)
    form = next(f for f in parsed.forms if any(label == button for label, _, _ in f.buttons))
    by_label = {text.strip(): input_id for input_id, text in form.labels.items()}
    fill_by_name: dict[str, str] = {}
    for label, value in (fill or {}).items():
        name = _name_for(page.text, by_label[label])  # a field without a label fails here
        assert name, label
        fill_by_name[name] = value
    checked_values = None if check is None else {_value_for(page.text, by_label[label]) for label in check}
    data: list[tuple[str, str]] = []
    for name, value, kind, checked in form.fields:
        if kind == "checkbox":
            if (checked if checked_values is None else value in checked_values):
                data.append((name, value))
        elif name:
            data.append((name, fill_by_name.get(name, value)))
    _, name, value = next(b for b in form.buttons if b[0] == button)
    if name:
        data.append((name, value))
    url = urljoin(str(page.url), form.action)
    return await client.post(url, content=urlencode(data),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})


def _name_for(html: str, input_id: str) -> str | None:
    m = re.search(rf'<input[^>]*id="{re.escape(input_id)}"[^>]*name="([^"]*)"', html)
    return m.group(1) if m else None


def _value_for(html: str, input_id: str) -> str:
    m = re.search(rf'<input[^>]*id="{re.escape(input_id)}"[^>]*value="([^"]*)"', html)
    assert m, input_id
    return m.group(1)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge: str | None = None, **over: str) -> dict[str, str]:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": SCOPE,
              "state": "st-123"}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    params.update(over)
    return params


async def follow(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    assert response.status_code in (302, 303), response.text
    return await client.get(urljoin(str(response.url), response.headers["Location"]))


async def sign_in_and_consent(
    client: httpx.AsyncClient, *, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD,
    challenge: str | None = None, check: set[str] | None = None, **params: str,
) -> dict[str, list[str]]:
    """The whole browser part; returns the query the app's redirect URI receives."""
    page = await client.get("/identity/connect/authorize", params=authorize_params(challenge, **params))
    assert page.status_code == 200, page.text
    if "Log in" in [b[0] for f in parse_page(page.text).forms for b in f.buttons]:
        page = await follow(client, await press(client, page, "Log in", fill={"Email address": email,
                                                                            "Password": password}))
    consent = page
    assert consent.status_code == 200
    back = await press(client, consent, "Allow access", check=check)
    assert back.status_code == 302
    location = back.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return parse_qs(urlsplit(location).query)


async def exchange(client: httpx.AsyncClient, code: str, verifier: str | None = None) -> httpx.Response:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier:
        form["code_verifier"] = verifier
    return await client.post("/connect/token", data=form, auth=BASIC)


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/connect/token", data={"grant_type": "refresh_token", "refresh_token": token},
                             auth=BASIC)


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


async def test_a_signed_in_browser_goes_straight_to_consent(xero_http: httpx.AsyncClient) -> None:
    await sign_in_and_consent(xero_http)
    again = await xero_http.get("/identity/connect/authorize", params=authorize_params())
    assert "Allow access" in again.text
    assert "Log in</button>" not in again.text
    # Already connected organisations are ticked.
    assert again.text.count(" checked") == 1
