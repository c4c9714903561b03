"""Fixtures for the Dynamics 365 tests (no tests here).

`dyn`: the Entra ID (TLS, local CA) and Dataverse sandboxes on ephemeral ports, and the product's
Dynamics stack pointed at them: settings, SQLite store, cipher, DynamicsAuth, DiscoveryClient.
`dyn.sign_in(upn)` drives the sandbox's sign-in pages with httpx as a browser would (Sign in, then
Accept on the consent page) and completes the flow for a connection.
`dyn.client(env)` is a DataverseClient for an environment whose sleeps are recorded, not spent.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

from bot.config import Settings
from bot.crypto import TokenCipher
from bot.solution import build_zip
from bot.storage.sqlite import SqliteStore
from bot.sync.dataverse import DataverseClient
from bot.sync.discovery import DiscoveryClient, Environment
from bot.sync.dynamics_auth import DynamicsAccount, DynamicsAuth
from bot.sync.http import RetryPolicy
from sandbox.entra import USERS
from sandbox.runner import Sandboxes

PUBLIC_BASE_URL = "http://localhost:3978"
REDIRECT_URI = f"{PUBLIC_BASE_URL}/oauth/dynamics/callback"
CONNECTION = "conn-dyn-1"


class _Forms(HTMLParser):
    """The forms of a page: action, hidden inputs, and the submit buttons' name/value."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, object]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": {}, "buttons": {}})
        elif self.forms and tag == "input" and values.get("type") == "hidden":
            fields = self.forms[-1]["fields"]
            assert isinstance(fields, dict)
            fields[values.get("name", "")] = values.get("value", "")
        elif self.forms and tag == "button" and values.get("name"):
            buttons = self.forms[-1]["buttons"]
            assert isinstance(buttons, dict)
            buttons[values["value"]] = values["name"]


def _form(html: str) -> tuple[str, dict[str, str], dict[str, str]]:
    parser = _Forms()
    parser.feed(html)
    assert parser.forms, f"no form on the page: {html[:300]}"
    form = parser.forms[0]
    action, fields, buttons = form["action"], form["fields"], form["buttons"]
    assert isinstance(action, str)
    assert isinstance(fields, dict)
    assert isinstance(buttons, dict)
    return action, fields, buttons


@dataclass
class Dyn:
    sandboxes: Sandboxes
    settings: Settings
    store: SqliteStore
    cipher: TokenCipher
    auth: DynamicsAuth
    http: httpx.AsyncClient
    discovery: DiscoveryClient
    sleeps: list[float] = field(default_factory=list)
    sent: list[httpx.Request] = field(default_factory=list)  # every request the product's httpx client sent

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sandboxes.clock.advance(seconds)
        await asyncio.sleep(0)

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep)

    async def browse(self, auth_uri: str, upn: str, *, accept: bool = True) -> dict[str, str]:
        """Sign in on the sandbox's pages; returns the query the redirect URI would receive."""
        user = next(u for u in USERS if u.upn == upn)
        assert self.sandboxes.ca is not None
        async with httpx.AsyncClient(verify=self.sandboxes.ca.client_ssl_context()) as browser:
            page = await browser.get(auth_uri)
            assert page.status_code == 200, page.text[:300]
            action, fields, _ = _form(page.text)
            response = await browser.post(
                urljoin(auth_uri, action), data={**fields, "username": user.upn, "password": user.password}
            )
            if response.status_code == 200:  # the consent page
                action, fields, buttons = _form(response.text)
                choice = "accept" if accept else "cancel"
                response = await browser.post(
                    urljoin(auth_uri, action), data={**fields, buttons[choice]: choice}
                )
        assert response.status_code == 302, response.text[:300]
        location = response.headers["location"]
        assert location.startswith(REDIRECT_URI)
        return dict(parse_qsl(urlsplit(location).query))

    async def sign_in(self, upn: str, connection_id: str = CONNECTION) -> DynamicsAccount:
        flow = await self.auth.start_flow(REDIRECT_URI, login_hint=upn)
        query = await self.browse(str(flow["auth_uri"]), upn)
        return await self.auth.complete_flow(connection_id, flow, query)

    async def environments(self, connection_id: str = CONNECTION) -> list[Environment]:
        token = await self.auth.access_token(connection_id, self.settings.dataverse_discovery_url)
        return await self.discovery.environments(token)

    def client(self, env: Environment, connection_id: str = CONNECTION) -> DataverseClient:
        # As the product builds it: a partial of access_token, which also takes force_refresh.
        token = functools.partial(self.auth.access_token, connection_id, env.url)
        return DataverseClient(self.http, env.api_url, token, retry=self.retry)


@pytest.fixture(scope="session")
def sandbox_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One directory for the session: the local CA is made once and reused by every test.
    return tmp_path_factory.mktemp("dynamics-sandbox")


@pytest.fixture
async def dyn(sandbox_data: Path, tmp_path: Path) -> AsyncIterator[Dyn]:
    async with Sandboxes(sandbox_data, solution_zip=build_zip(managed=True)) as sandboxes:
        sandboxes.register_bot(PUBLIC_BASE_URL)
        env = {name.lower(): value for name, value in sandboxes.settings_env().items()}
        key = TokenCipher.generate_key()
        settings = Settings(_env_file=None, token_encryption_keys=(key,), **env)  # type: ignore[call-arg]
        store = await SqliteStore.open(tmp_path / "connector.db")
        cipher = TokenCipher([key])
        sent: list[httpx.Request] = []

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        async with httpx.AsyncClient(timeout=10, event_hooks={"request": [record]}) as http:
            world = Dyn(
                sandboxes=sandboxes,
                settings=settings,
                store=store,
                cipher=cipher,
                auth=DynamicsAuth(settings, store, cipher),
                http=http,
                discovery=DiscoveryClient(settings, http),
                sent=sent,
            )
            try:
                yield world
            finally:
                await store.close()
