"""Driving the setup as a person would: `sync connect`, the checklist card, the sign-in pages, the settings.

    run = await start_setup(chat)                 # the checklist card is out
    page = await run.sign_in_xero()               # the browser signs in and consents
    await run.say(page.code)                      # the code typed back into the chat
    connection = await connect_via_chat(chat)     # or the whole setup in one call
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bot.storage.base import Connection
from sandbox.entra import ALICE as ENTRA_ALICE
from tests.scenario.chats import Chat, TeamsUser
from tests.scenario.connector import Outbound
from tests.support.signin_pages import Browser, Page

__all__ = ["SetupRun", "connect_via_chat", "start_setup"]


@dataclass
class SetupRun:
    """Where one conversational setup stands: its checklist card and the thread it lives in."""

    chat: Chat
    user: TeamsUser
    card_id: str
    thread: str  # in a channel, the setup's own thread; "" in a personal chat
    browser: Browser
    settings_card_id: str = ""

    def card(self) -> Outbound:
        current = self.chat.bot.connector.latest(self.card_id)
        assert current is not None
        return current

    async def say(self, text: str, *, user: TeamsUser | None = None) -> httpx.Response:
        return await self.chat.say(text, user=user or self.user, thread=self.thread)

    async def click(self, title: str, inputs: dict[str, Any] | None = None, *, user: TeamsUser | None = None) -> None:
        response = await self.chat.click(self.card(), title, inputs, user=user or self.user)
        assert response.status_code < 300, response.text

    async def card_where(self, check: Callable[[Outbound], bool], timeout: float = 10.0) -> Outbound:
        """Wait until the checklist card, as it stands now (its latest version), passes `check`."""
        connector = self.chat.bot.connector
        return await connector.wait_for(
            lambda e: e.activity_id == self.card_id and connector.latest(self.card_id) is e and check(e),
            timeout=timeout,
        )

    async def card_with(self, fragment: str, timeout: float = 10.0) -> Outbound:
        """Wait until the checklist card shows `fragment`."""
        return await self.card_where(lambda e: fragment in e.card_text, timeout)

    async def card_with_action(self, title: str, timeout: float = 10.0) -> Outbound:
        """Wait until the checklist card has a button called `title`."""
        return await self.card_where(lambda e: e.has_action(title), timeout)

    async def sign_in_xero(self, **kw: Any) -> Page:
        """Connect to Xero in the browser (see Browser.xero for the options)."""
        card = await self.card_with_action("Connect to Xero")
        return await self.browser.xero(card.action_url("Connect to Xero"), **kw)

    async def sign_in_dynamics(self, upn: str = ENTRA_ALICE.upn, password: str = ENTRA_ALICE.password, **kw: Any) -> Page:
        card = await self.card_with_action("Connect to Dynamics 365")
        return await self.browser.entra(card.action_url("Connect to Dynamics 365"), upn=upn, password=password, **kw)

    async def settings_card(self, timeout: float = 10.0) -> Outbound:
        connector = self.chat.bot.connector
        if not self.settings_card_id:
            card = await connector.wait_for(
                lambda e: e.kind != "update" and e.card is not None and "Last run (UTC)" in e.card_text,
                timeout=timeout,
            )
            self.settings_card_id = card.activity_id
        current = connector.latest(self.settings_card_id)
        assert current is not None
        return current

    async def save_settings(
        self,
        name: str,
        plan: str = "standard",
        timezone: str = "Europe/London",
        notify_mode: str = "every_run",
        *,
        user: TeamsUser | None = None,
    ) -> httpx.Response:
        card = await self.settings_card()
        inputs = {"connection_name": name, "plan": plan, "timezone": timezone, "notify_mode": notify_mode}
        return await self.chat.click(card, "Save", inputs, user=user or self.user)


async def start_setup(chat: Chat, *, user: TeamsUser | None = None) -> SetupRun:
    """`sync connect` in the chat; returns the run once the checklist card is out."""
    who = user or chat.user
    mark = chat.bot.connector.mark()
    response = await chat.say("sync connect", user=who)
    assert response.status_code < 300, response.text
    card = await chat.bot.connector.wait_for(
        lambda e: e.kind != "update" and e.card is not None and "Set up a connection" in e.card_text, since=mark
    )
    _, _, thread = card.conversation_id.partition(";messageid=")
    return SetupRun(chat, who, card.activity_id, thread if chat.is_channel else "", chat.bot.browser())


async def connect_via_chat(
    chat: Chat,
    *,
    user: TeamsUser | None = None,
    tenant_id: str | None = None,
    environment: str | None = None,
    name: str = "",
    plan: str = "standard",
    timezone: str = "Europe/London",
    dynamics_upn: str = ENTRA_ALICE.upn,
    dynamics_password: str = ENTRA_ALICE.password,
) -> Connection:
    """The whole setup through the chat and the sign-in pages; returns the connection it created.

    Xero: demo@xero.example allowing one organisation (`tenant_id`, default the first offered);
    Dynamics: Alice by default; `environment` picks by name when several are offered (default the first)."""
    run = await start_setup(chat, user=user)
    page = await run.sign_in_xero(tenants=[tenant_id] if tenant_id else None)
    assert page.code, page.text[:400]
    await run.say(page.code)
    page = await run.sign_in_dynamics(dynamics_upn, dynamics_password)
    if page.code:
        await run.say(page.code)
    card = await run.chat.bot.connector.wait_for(
        lambda e: e.activity_id == run.card_id
        and e.card is not None
        and ("Use this environment" in e.card_text or "Connected to Dynamics 365" in e.card_text)
    )
    if card.has_action("Use this environment"):
        choices = card.inputs()["environment_id"]["choices"]
        wanted = next((c for c in choices if environment in (None, c["title"], c["value"])), None)
        assert wanted is not None, f"no environment {environment!r} in {choices}"
        await run.click("Use this environment", {"environment_id": wanted["value"]})
    settings = await run.settings_card()
    final_name = name or str(settings.inputs()["connection_name"].get("value", "")) or f"Conn {uuid.uuid4().hex[:4]}"
    mark = chat.bot.connector.mark()
    await run.save_settings(final_name, plan, timezone)
    await chat.bot.connector.wait_for_text("created; the first sync is running now", since=mark)
    found = [c for c in await chat.bot.store.list_connections(chat.key) if c.name == final_name]
    assert found, "the setup said it created the connection, but the store has none"
    return found[0]
