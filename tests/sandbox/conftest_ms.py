"""Shared helpers for the Entra ID and Dataverse sandbox tests (imported explicitly by those modules).

`running_ms_sandboxes(tmp_path)` serves both sandboxes on ephemeral ports (Entra over TLS with a local CA,
Dataverse over http) and gives clients for them: a real MSAL app, and an HTTP sign-in that drives the login
and consent pages like a browser (GET authorize, POST the login form, POST Accept, read the redirect).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import requests
from aiohttp import web

from bot.solution import build_zip
from sandbox.clock import Clock
from sandbox.dataverse import DataverseSandbox
from sandbox.entra import ALICE, CLIENT_ID, CLIENT_SECRET, USERS, EntraSandbox
from sandbox.tls import LocalCA

REDIRECT_URI = "http://localhost:3978/oauth/dynamics/callback"
PASSWORDS = {user.upn: user.password for user in USERS}


class FormReader(HTMLParser):
    """The forms of a page: action, input values and the submit buttons' (name, value, label)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._button: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}, "buttons": []})
        elif tag == "input" and self.forms and values.get("name"):
            self.forms[-1]["fields"][values["name"]] = values.get("value", "")
        elif tag == "button" and self.forms:
            self._button = {"name": values.get("name", ""), "value": values.get("value", ""), "label": ""}

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["label"] += data.strip()

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None and self.forms:
            self.forms[-1]["buttons"].append(self._button)
            self._button = None


def read_form(html: str) -> dict[str, Any]:
    reader = FormReader()
    reader.feed(html)
    assert reader.forms, f"no form on the page: {html[:300]}"
    form: dict[str, Any] = reader.forms[0]
    return form


def press(form: dict[str, Any], label: str, **fields: str) -> dict[str, str]:
    """The data a browser posts when the button labelled `label` is clicked."""
    button = next(b for b in form["buttons"] if b["label"] == label)
    data = dict(form["fields"])
    data.update(fields)
    if button["name"]:
        data[button["name"]] = button["value"]
    return data


def redirect_query(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:500]
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI), location
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@dataclass
class MsSandboxes:
    clock: Clock
    ca: LocalCA
    entra: EntraSandbox
    dataverse: DataverseSandbox
    entra_url: str
    dataverse_url: str
    http: httpx.AsyncClient
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    _refresh: dict[str, str] = field(default_factory=dict)

    def env_url(self, unique_name: str) -> str:
        return f"{self.dataverse_url}/env/{unique_name}"

    def api_url(self, unique_name: str) -> str:
        """Global Discovery's ApiUrl: where Web API calls go (the token audience stays `env_url`)."""
        return f"{self.dataverse_url}/api-env/{unique_name}"

    def api(self, unique_name: str) -> str:
        return f"{self.api_url(unique_name)}/api/data/v9.2"

    def requests_session(self) -> requests.Session:
        session = requests.Session()
        session.verify = str(self.ca.ca_bundle_path)
        # requests lets REQUESTS_CA_BUNDLE override session.verify unless the environment is ignored.
        session.trust_env = False
        return session

    def msal_app(self, cache: msal.SerializableTokenCache | None = None) -> msal.ConfidentialClientApplication:
        """A real MSAL app (blocking: build and call it through asyncio.to_thread)."""
        return msal.ConfidentialClientApplication(
            CLIENT_ID,
            client_credential=CLIENT_SECRET,
            authority=f"{self.entra_url}/organizations",
            http_client=self.requests_session(),
            instance_discovery=False,
            token_cache=cache,
        )

    async def browse_sign_in(self, auth_uri: str, upn: str, *, accept: bool = True) -> dict[str, str]:
        """What a user does in the browser; returns the query of the redirect to our callback."""
        page = await self.http.get(auth_uri)
        assert page.status_code == 200, page.text[:500]
        form = read_form(page.text)
        response = await self.http.post(
            self.entra_url + form["action"],
            data=press(form, "Sign in", username=upn, password=PASSWORDS[upn]),
        )
        if response.status_code == 200:
            consent = read_form(response.text)
            response = await self.http.post(
                self.entra_url + consent["action"], data=press(consent, "Accept" if accept else "Cancel")
            )
        return redirect_query(response)

    async def sign_in(self, upn: str, scope: str) -> dict[str, Any]:
        """The authorization code flow over plain HTTP (PKCE S256), as a web app would do it."""
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        authorize = httpx.URL(
            f"{self.entra_url}/organizations/oauth2/v2.0/authorize",
            params={
                "client_id": CLIENT_ID, "response_type": "code", "redirect_uri": REDIRECT_URI,
                "scope": f"{scope} openid profile offline_access", "state": "state-1", "nonce": "nonce-1",
                "code_challenge": challenge, "code_challenge_method": "S256", "client_info": "1",
            },
        )
        query = await self.browse_sign_in(str(authorize), upn)
        return await self.token_request({
            "grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier, "scope": f"{scope} openid profile offline_access", "client_info": "1",
        })

    async def token_request(self, form: dict[str, str], *, secret: str = CLIENT_SECRET) -> dict[str, Any]:
        response = await self.http.post(
            f"{self.entra_url}/organizations/oauth2/v2.0/token",
            data={"client_id": CLIENT_ID, "client_secret": secret, **form},
        )
        body: dict[str, Any] = response.json()
        body["_status"] = response.status_code
        return body

    async def token(self, upn: str = ALICE.upn, audience: str | None = None) -> str:
        """An access token for `audience` (default: Global Discovery), signing in once per user."""
        audience = audience or self.dataverse_url
        cached = self._tokens.get((upn, audience))
        if cached:
            return cached
        if upn not in self._refresh:
            first = await self.sign_in(upn, f"{self.dataverse_url}/user_impersonation")
            assert first["_status"] == 200, first
            self._refresh[upn] = first["refresh_token"]
            self._tokens[(upn, self.dataverse_url)] = first["access_token"]
        if (upn, audience) not in self._tokens:
            result = await self.token_request({
                "grant_type": "refresh_token", "refresh_token": self._refresh[upn],
                "scope": f"{audience}/user_impersonation openid profile offline_access",
            })
            assert result["_status"] == 200, result
            self._refresh[upn] = result["refresh_token"]
            self._tokens[(upn, audience)] = result["access_token"]
        return self._tokens[(upn, audience)]

    async def dv(
        self, method: str, env: str, path: str, *, upn: str = ALICE.upn, headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """A Web API call as `upn` in environment `env` (path relative to /api/data/v9.2/)."""
        token = await self.token(upn, self.env_url(env))
        merged = {
            "Authorization": f"Bearer {token}", "Accept": "application/json", "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
        }
        merged.update(headers or {})
        return await self.http.request(method, f"{self.api(env)}/{path}", headers=merged, **kwargs)


async def _serve(app: web.Application, ca: LocalCA | None) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_ssl_context() if ca else None)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"https://localhost:{port}" if ca else f"http://127.0.0.1:{port}"


@asynccontextmanager
async def running_ms_sandboxes(directory: Path) -> AsyncIterator[MsSandboxes]:
    clock = Clock()
    ca = LocalCA.create(directory / "ca")
    entra = EntraSandbox(clock)
    dataverse = DataverseSandbox(entra, clock, solution_zip=solution_zip())
    entra_runner, entra_url = await _serve(entra.app, ca)
    entra.set_base_url(entra_url)
    entra.register_redirect_uri(REDIRECT_URI)
    dataverse_runner, dataverse_url = await _serve(dataverse.app, None)
    dataverse.set_base_url(dataverse_url)
    async with httpx.AsyncClient(verify=ca.client_ssl_context(), timeout=30, trust_env=False) as http:
        try:
            yield MsSandboxes(clock, ca, entra, dataverse, entra_url, dataverse_url, http)
        finally:
            await dataverse_runner.cleanup()
            await entra_runner.cleanup()


@functools.cache
def solution_zip(version: str | None = None) -> bytes:
    """The managed solution we ship, as the seeded "installed" environments import it."""
    return build_zip(managed=True, version=version)


def guid_of(entity_url: str) -> str:
    return entity_url.rsplit("(", 1)[1].rstrip(")")
