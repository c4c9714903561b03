"""Fixtures for the Xero client tests (no tests here).

`world`: the Xero sandbox on an ephemeral port and the product's Xero stack pointed at it (settings,
SQLite store, cipher, XeroOAuth, XeroTokenProvider, TenantLimiter, XeroClient), all on the sandbox's
clock: every sleep the stack asks for moves that clock and is recorded in `world.sleeps`.
`consent()` drives the sandbox's login and consent pages with httpx, as a browser would.
Parametrize `world` indirectly to pass XeroSandbox limits: `{"minute_limit": 10}`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from aiohttp import web

from bot.config import Settings
from bot.crypto import TokenCipher
from bot.storage.sqlite import SqliteStore
from bot.sync.http import RetryPolicy
from bot.sync.ratelimit import TenantLimiter
from bot.sync.xero import XeroClient
from bot.sync.xero_auth import XeroOAuth, XeroTokenSet
from bot.sync.xero_tokens import XeroTokenProvider
from sandbox.clock import Clock
from sandbox.xero.sandbox import CLIENT_ID, CLIENT_SECRET, RecordedRequest, XeroSandbox
from sandbox.xero.seed import AU_TENANT_ID, DEMO_EMAIL, DEMO_PASSWORD, NZ_TENANT_ID

CONNECTION = "conn-1"
REDIRECT_URI = "http://localhost:3978/oauth/xero/callback"
API = "/api.xro/2.0/"


@dataclass
class World:
    sandbox: XeroSandbox
    clock: Clock
    url: str
    settings: Settings
    http: httpx.AsyncClient
    store: SqliteStore
    cipher: TokenCipher
    oauth: XeroOAuth
    tokens: XeroTokenProvider
    limiter: TenantLimiter
    client: XeroClient
    retry: RetryPolicy
    reconnects: list[str] = field(default_factory=list)
    sleeps: list[float] = field(default_factory=list)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    async def on_reconnect(self, connection_id: str) -> None:
        self.reconnects.append(connection_id)

    def provider(self) -> XeroTokenProvider:
        """Another token provider on the same store: what a second process would have."""
        return XeroTokenProvider(self.store, self.cipher, self.oauth, self.on_reconnect, now=self.clock.now)

    def api_requests(self) -> list[RecordedRequest]:
        return [r for r in self.sandbox.requests if r.path.startswith(API)]

    def refresh_requests(self) -> list[RecordedRequest]:
        return [r for r in self.sandbox.requests
                if r.path == "/connect/token" and r.form.get("grant_type") == "refresh_token"]


@pytest.fixture
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    limits: dict[str, int] = getattr(request, "param", {})
    clock = Clock()
    sandbox = XeroSandbox(clock, **limits)
    sandbox.register_redirect_uri(REDIRECT_URI)
    runner = web.AppRunner(sandbox.app, access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}"
    settings = Settings(
        _env_file=None,
        sandbox=True,
        xero_client_id=CLIENT_ID,
        xero_client_secret=CLIENT_SECRET,
        xero_login_url=url,
        xero_identity_url=url,
        xero_api_url=url,
    )
    store = await SqliteStore.open(tmp_path / "store.db")
    http = httpx.AsyncClient(timeout=5)
    cipher = TokenCipher([TokenCipher.generate_key()])
    holder: list[World] = []

    async def sleep(seconds: float) -> None:
        await holder[0].sleep(seconds)

    async def on_reconnect(connection_id: str) -> None:
        await holder[0].on_reconnect(connection_id)

    retry = RetryPolicy(sleep=sleep)
    oauth = XeroOAuth(settings, http, retry=retry, now=clock.now)
    tokens = XeroTokenProvider(store, cipher, oauth, on_reconnect, now=clock.now)
    limiter = TenantLimiter(clock=clock.time, sleep=sleep)
    client = XeroClient(settings, http, tokens, limiter, retry=retry)
    holder.append(World(sandbox, clock, url, settings, http, store, cipher, oauth, tokens, limiter, client, retry))
    try:
        yield holder[0]
    finally:
        await http.aclose()
        await store.close()
        await runner.cleanup()


@pytest.fixture
async def connected(world: World) -> XeroTokenSet:
    """The demo user consented to the NZ and AU organisations; tokens saved for CONNECTION."""
    tokens = await consent(world, DEMO_EMAIL, DEMO_PASSWORD, [NZ_TENANT_ID, AU_TENANT_ID])
    await world.tokens.save(CONNECTION, tokens)
    world.sandbox.requests.clear()
    world.sleeps.clear()
    return tokens


@dataclass
class Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)
    checkboxes: list[str] = field(default_factory=list)


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", "")))
        elif tag == "input" and self.forms and a.get("name"):
            if a.get("type") == "checkbox":
                self.forms[-1].checkboxes.append(a.get("value", ""))
            elif a.get("type") == "hidden":
                self.forms[-1].fields[a["name"]] = a.get("value", "")


def only_form(html: str) -> Form:
    parser = _Forms()
    parser.feed(html)
    assert len(parser.forms) == 1, html
    return parser.forms[0]


async def authorize(world: World, email: str, password: str, tenant_ids: Sequence[str], *,
                    state: str = "state-123") -> tuple[str, str]:
    """Follow the authorize URL through login and consent; returns (code, verifier)."""
    verifier, challenge = XeroOAuth.new_pkce()
    url = world.oauth.authorize_url(state, challenge, REDIRECT_URI)
    async with httpx.AsyncClient(follow_redirects=False, timeout=5) as browser:
        page = await browser.get(url)
        assert page.status_code == 200, page.text
        login = only_form(page.text)
        answer = await browser.post(urljoin(world.url, login.action),
                                    data={**login.fields, "email": email, "password": password})
        assert answer.status_code == 303, answer.text
        page = await browser.get(urljoin(world.url, answer.headers["Location"]))
        form = only_form(page.text)
        assert set(tenant_ids) <= set(form.checkboxes)
        answer = await browser.post(urljoin(world.url, form.action),
                                    data={**form.fields, "tenant": list(tenant_ids), "action": "allow"})
        assert answer.status_code == 302, answer.text
    location = answer.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0], verifier


async def consent(world: World, email: str, password: str, tenant_ids: Sequence[str]) -> XeroTokenSet:
    code, verifier = await authorize(world, email, password, tenant_ids)
    return await world.oauth.exchange_code(code, verifier, REDIRECT_URI)
