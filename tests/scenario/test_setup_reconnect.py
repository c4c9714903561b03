"""Reconnect one provider of an existing connection: only that step, and the old sign-in stays until the
new one is proven and checked."""

from __future__ import annotations

from typing import Any

from bot.dialogs import Provider
from bot.storage.base import ConnectionStatus, TokenKind
from bot.storage.helpers import update_connection
from bot.sync.tables import REQUIRED_ROLE_PRIVILEGES
from bot.teams.turn import Turn
from sandbox.entra import CAROL
from sandbox.xero.seed import AU_TENANT_ID, NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BOB, BotHarness, Chat, connect_via_chat

RECONNECT = "test_reconnect"


def install_reconnect_button(bot: BotHarness) -> None:
    """What the ops feature's Reconnect buttons do, reduced to the call into the setup."""

    async def reconnect(turn: Turn, value: dict[str, Any]) -> None:
        await bot.setup.reconnect(turn, str(value["connection_id"]), str(value["provider"]))

    bot.router.on_verb(RECONNECT, reconnect)


async def _needs_reconnection(bot: BotHarness, connection_id: str) -> None:
    def mark(c: Any) -> Any:
        return c.model_copy(update={"status": ConnectionStatus.NEEDS_RECONNECTION, "status_reason": "Xero said no"})

    await update_connection(bot.store, connection_id, mark)
    await bot.store.unschedule(connection_id)


async def _press_reconnect(bot: BotHarness, chat: Chat, connection_id: str, provider: Provider, thread: str = "") -> Any:
    install_reconnect_button(bot)
    mark = bot.connector.mark()
    data = {"verb": RECONNECT, "connection_id": connection_id, "provider": provider.value}
    response = await chat.post(chat.activity("message", thread=thread, value=data))
    assert response.status_code < 300
    fragment = "Connect to Xero" if provider is Provider.XERO else "Connect to Dynamics 365"
    return await bot.connector.wait_for_card(fragment, since=mark)


async def test_reconnect_xero_replaces_only_the_xero_sign_in(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_via_chat(chat, tenant_id=NZ_TENANT_ID, name="NZ")
    old_xero = await bot.store.get_tokens(connection.id, TokenKind.XERO)
    old_dynamics = await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS)
    await _needs_reconnection(bot, connection.id)

    card = await _press_reconnect(bot, chat, connection.id, Provider.XERO)
    assert "Connect to Dynamics 365" not in card.card_text, "only the Xero step comes back"
    page = await bot.browser().xero(card.action_url("Connect to Xero"), tenants=[NZ_TENANT_ID])
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) == old_xero, "unchanged until proven"
    mark = bot.connector.mark()
    await chat.say(page.code)
    # The organisation's name is Xero's text: literal, its parentheses escaped for markdown (issue 14).
    await bot.connector.wait_for_text("✅ Reconnected to Xero: Harbourside Trading \\(NZ\\)", since=mark)

    current = await bot.store.get_connection(connection.id)
    assert current is not None
    assert current.status is ConnectionStatus.ACTIVE
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) != old_xero
    assert await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS) == old_dynamics
    assert await bot.store.get_due(connection.id) is not None, "a run is due at once after reconnecting"
    assert len(await bot.store.all_token_blobs()) == 2, "no side copies left behind"


async def test_reconnect_xero_with_a_login_that_lacks_the_organisation(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_via_chat(chat, tenant_id=AU_TENANT_ID, name="AU")
    old_xero = await bot.store.get_tokens(connection.id, TokenKind.XERO)
    card = await _press_reconnect(bot, chat, connection.id, Provider.XERO)
    page = await bot.browser().xero(
        card.action_url("Connect to Xero"), email="single@xero.example", password="Single-pass-1"
    )
    await chat.say(page.code)
    await bot.connector.wait_for_card("That sign-in doesn't include Wattle Street Supplies (AU)")
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) == old_xero
    assert len(await bot.store.all_token_blobs()) == 2


async def test_reconnect_dynamics(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_via_chat(chat, tenant_id=NZ_TENANT_ID, name="NZ")
    old_dynamics = await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS)

    # Carol cannot stand in: she lacks the privileges in the connection's environment.
    card = await _press_reconnect(bot, chat, connection.id, Provider.DYNAMICS)
    page = await bot.browser().entra(card.action_url("Connect to Dynamics 365"), upn=CAROL.upn, password=CAROL.password)
    await chat.say(page.code)
    card = await bot.connector.wait_for_card(f"That user lacks {len(REQUIRED_ROLE_PRIVILEGES)} privilege(s) in Contoso Production")
    assert await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS) == old_dynamics

    mark = bot.connector.mark()
    await chat.click(card, "Try again")
    card = await bot.connector.wait_for(
        lambda e: e.activity_id == card.activity_id and e.card is not None and e.has_action("Connect to Dynamics 365"),
        since=mark,
    )
    mark = bot.connector.mark()
    page = await bot.browser().entra(
        card.action_url("Connect to Dynamics 365"), upn="alice@contoso.example", password="Alice-Sandbox-1!"
    )
    assert "Signed in to Dynamics 365" in page.text
    await bot.connector.wait_for_text("✅ Reconnected to Dynamics 365: Contoso Production", since=mark)
    assert await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS) != old_dynamics
    assert len(await bot.store.all_token_blobs()) == 2


async def test_reconnect_is_refused_for_another_conversations_connection(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_via_chat(chat, tenant_id=NZ_TENANT_ID, name="NZ")
    other = bot.personal(BOB)
    install_reconnect_button(bot)
    mark = bot.connector.mark()
    data = {"verb": RECONNECT, "connection_id": connection.id, "provider": "xero"}
    await other.post(other.activity("message", value=data))
    await bot.connector.wait_for_text("I can't find that connection in this conversation", since=mark)
