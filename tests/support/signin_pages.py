"""A scripted browser for the sandboxes' sign-in pages (Xero login and consent, Entra sign-in and consent).

Both harnesses drive the same pages with it: the scenario harness opens the links on the bot's cards
and lands on the bot's OAuth callback page; the integration harness, which runs no bot, sets
`hold_callbacks` and reads the code from the redirect to the callback instead.

    async with Browser(settings, hold_callbacks=True) as browser:
        page = await browser.xero(authorize_url, tenants=[NZ_TENANT_ID])
        page.query["code"]                                  # the redirect to the callback, not followed
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import unescape
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from bot.config import Settings
from bot.sync.runtime import ssl_context
from sandbox.xero.seed import DEMO_EMAIL, DEMO_PASSWORD

_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[^"]+)" value="(?P<value>[^"]*)"')
_ACTION = re.compile(r'<form method="post" action="(?P<action>[^"]+)"')
_CHECKBOX = re.compile(r'<input type="checkbox" id="[^"]*" name="tenant" value="(?P<value>[^"]+)"')
_CODE = re.compile(r'<p class="code" id="code"[^>]*>(?P<code>[^<]+)</p>')
_REDIRECTS = (301, 302, 303, 307)


@dataclass
class Page:
    status: int
    url: str
    text: str

    @property
    def code(self) -> str:
        """The one-time code our callback page shows ("" if the page has none)."""
        match = _CODE.search(self.text)
        return unescape(match["code"]) if match else ""

    @property
    def redirected(self) -> bool:
        """A redirect that was not followed (a held callback): `url` is where it pointed."""
        return self.status in _REDIRECTS

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    def hidden(self) -> dict[str, str]:
        return {m["name"]: unescape(m["value"]) for m in _HIDDEN.finditer(self.text)}

    def form_action(self) -> str:
        match = _ACTION.search(self.text)
        assert match is not None, f"no form on {self.url}: {self.text[:300]}"
        return urljoin(self.url, unescape(match["action"]))


class Browser:
    """An HTTP client that follows the sandboxes' sign-in pages like a person would (its own cookies)."""

    def __init__(self, settings: Settings, *, hold_callbacks: bool = False) -> None:
        self._client = httpx.AsyncClient(follow_redirects=False, timeout=15, verify=ssl_context(settings))
        self._callbacks = f"{settings.public_base_url}/oauth/"
        # When set, a redirect to the bot's OAuth callback is not followed: the page returned has
        # status 302 and the callback's URL, to be opened later with `get` (e.g. after a restart).
        self.hold_callbacks = hold_callbacks

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._client.aclose()

    async def _follow(self, response: httpx.Response) -> Page:
        for _ in range(10):
            if response.status_code not in _REDIRECTS:
                return Page(response.status_code, str(response.url), response.text)
            target = urljoin(str(response.url), response.headers["location"])
            if self.hold_callbacks and target.startswith(self._callbacks) and "/callback" in target:
                return Page(response.status_code, target, "")
            response = await self._client.get(target)
        raise AssertionError("too many redirects")

    async def get(self, url: str) -> Page:
        return await self._follow(await self._client.get(url))

    async def post(self, url: str, data: dict[str, Any]) -> Page:
        return await self._follow(await self._client.post(url, data=data))

    async def xero(
        self,
        start_url: str,
        *,
        email: str = DEMO_EMAIL,
        password: str = DEMO_PASSWORD,
        tenants: Sequence[str] | None = None,
        allow: bool = True,
    ) -> Page:
        """Open the card's Connect to Xero link, log in, tick organisations (default: the first) and answer
        the consent page. Returns the page the bot's callback shows."""
        page = await self.get(start_url)
        if "Log in to Xero" in page.text:
            page = await self.post(
                page.form_action(), {**page.hidden(), "email": email, "password": password}
            )
        elif "wants access to your Xero data" not in page.text:
            return page  # the bot refused the link, or Xero showed an error
        # (Still logged in from an earlier sign-in in this browser: Xero goes straight to consent.)
        assert "wants access to your Xero data" in page.text, page.text[:400]
        offered = [m["value"] for m in _CHECKBOX.finditer(page.text)]
        chosen = list(tenants) if tenants is not None else offered[:1]
        data: dict[str, Any] = {**page.hidden(), "action": "allow" if allow else "cancel", "tenant": chosen}
        return await self.post(page.form_action(), data)

    async def entra(self, start_url: str, *, upn: str, password: str, accept: bool = True) -> Page:
        """Open the card's Connect to Dynamics 365 link, sign in (and consent). Returns the callback's page."""
        page = await self.get(start_url)
        if "Sign in" not in page.text or 'name="username"' not in page.text:
            return page
        page = await self.post(page.form_action(), {**page.hidden(), "username": upn, "password": password})
        if 'value="accept"' in page.text:
            page = await self.post(
                page.form_action(), {**page.hidden(), "action": "accept" if accept else "cancel"}
            )
        return page
