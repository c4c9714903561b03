"""Every command from chat, in a personal chat and in a channel (with the @mention), against the sandboxes.

Activities go in over HTTP as Teams posts them; what the bot answers reaches the fake Bot Connector.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.storage.base import ConnectionStatus
from bot.sync.tables import ConnectorStatus
from cards.formatting import outcome_words
from sandbox.xero.seed import UK_TENANT_ID
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, open_bot
from tests.scenario.opsharness import connect_in, connector_row, group_chat, install_ops
from tests.support.cards import walk_card


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as opened:
        yield opened


@pytest.fixture(params=["personal", "channel"])
def chat(request: pytest.FixtureRequest, bot: BotHarness) -> Chat:
    return bot.personal(ALICE) if request.param == "personal" else bot.channel(ALICE)


async def test_a_group_chat_with_the_mention(bot: BotHarness) -> None:
    chat = group_chat(bot)
    connection = await connect_in(bot, chat, name="Acme")
    status = await ask(bot, chat, "Sync Status", "Sync status")
    assert "Acme" in status.card_text
    assert status.conversation_id == chat.conversation_id
    help_card = await ask(bot, chat, "help", "What I can do")
    assert "mention me first" in help_card.card_text
    ack = await ask(bot, chat, "/sync now acme", "Sync running")
    await bot.connector.wait_for(
        lambda e: e.activity_id == ack.activity_id and "Sync done" in e.card_text, timeout=20
    )
    assert (await bot.store.list_runs(connection.id, 1))[0].trigger == "setup"


async def ask(bot: BotHarness, chat: Chat, text: str, fragment: str, **kw: Any) -> Outbound:
    """Say `text` and return the first card (new or updated) containing `fragment`."""
    mark = bot.connector.mark()
    await chat.say(text, **kw)
    return await bot.connector.wait_for_card(fragment, since=mark)


def replies_in_place(chat: Chat, answer: Outbound) -> None:
    """In a channel, the bot answers in the thread the command was posted in."""
    if chat.is_channel:
        assert ";messageid=" in answer.conversation_id
        assert answer.conversation_id.startswith(chat.channel_id)


def table_rows(card: Outbound) -> int:
    """The rows of the card's tables, headers not counted."""
    tables = [n for n in walk_card(card.card or {}) if n.get("type") == "Table"]
    return sum(len(table.get("rows", [])) - 1 for table in tables)


async def test_status_in_any_spelling(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme Books")
    connection = await bot.store.save_connection(
        connection.model_copy(update={"timezone": "Pacific/Auckland"})
    )
    run = await bot.harness.run(connection.id)
    for text in ("/sync status", "SYNC STATUS", "status", "Status acme books", "/status"):
        card = await ask(bot, chat, text, "Sync status")
        replies_in_place(chat, card)
        shown = card.card_text
        assert "Acme Books" in shown
        assert f"✅ {connection.xero_org_name}" in shown
        assert f"✅ {connection.dataverse_env_name}" in shown
        assert "Premium: every 5 minutes" in shown
        assert "Pacific/Auckland" in shown
        assert "Active" in shown
        # The last run in UTC and in the connection's own zone.
        assert " UTC (" in shown
        assert "Pacific/Auckland)" in shown
        assert outcome_words(run.outcome) in shown
        assert "created" in shown or "failed" in shown
        assert "Xero API calls left today" in shown
        assert card.has_action("Run now")


async def test_now_shows_progress_then_the_result_on_the_same_card(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    mark = bot.connector.mark()
    await chat.say("/sync now")
    ack = await bot.connector.wait_for_card("Sync running", since=mark)
    replies_in_place(chat, ack)
    done = await bot.connector.wait_for(
        lambda e: e.activity_id == ack.activity_id and "Sync done" in e.card_text, since=mark, timeout=20
    )  # "✅ Sync done" or "⚠️ Sync done, some records failed"
    assert done.kind == "update"
    assert "Chart of Accounts" in done.card_text
    assert "Took" in done.card_text
    assert "Next run" in done.card_text
    # One card for the run: nothing else was posted for it.
    assert [e for e in bot.connector.sent_cards(mark) if "Sync" in e.card_text] == [ack]
    runs = await bot.store.list_runs(connection.id, 5)
    assert [r.trigger for r in runs] == ["setup"]  # the first run of a connection
    assert connector_row(bot, connection)["xdc_lastoutcome"]


async def test_history_lists_the_last_runs(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme")
    for _ in range(3):
        await bot.harness.run(connection.id)
    card = await ask(bot, chat, "history", "Recent runs")
    replies_in_place(chat, card)
    assert table_rows(card) == 3
    card = await ask(bot, chat, "sync history Acme 2", "Recent runs")
    assert table_rows(card) == 2
    card = await ask(bot, chat, "history 1", "Latest run")
    assert table_rows(card) == 1


async def test_pause_and_resume(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    await bot.store.schedule(connection.id, bot.sandboxes.clock.now() + timedelta(hours=1))
    ack = await ask(bot, chat, "pause", "Pausing")
    paused = await bot.connector.wait_for(
        lambda e: e.activity_id == ack.activity_id and "is paused" in e.card_text, since=0
    )
    assert "Paused by Alice Anders" in paused.card_text
    stored = await bot.harness.connection(connection.id)
    assert stored.status == ConnectionStatus.PAUSED
    assert await bot.store.get_due(connection.id) is None

    async def paused_in_dynamics() -> bool:
        return connector_row(bot, stored)["xdc_status"] == ConnectorStatus.PAUSED

    await bot.wait_until(paused_in_dynamics)
    await ask(bot, chat, "pause", "already paused")
    # Now is refused while paused, on the card it answered with.
    ack = await ask(bot, chat, "now", "Sync running")
    await bot.connector.wait_for(lambda e: e.activity_id == ack.activity_id and "paused" in e.card_text)

    ack = await ask(bot, chat, "resume", "Resuming")
    await bot.connector.wait_for(
        lambda e: e.activity_id == ack.activity_id and "running again" in e.card_text
    )
    stored = await bot.harness.connection(connection.id)
    assert stored.status == ConnectionStatus.ACTIVE
    await ask(bot, chat, "resume", "isn't paused")


async def test_help_unknown_and_connect(bot: BotHarness, chat: Chat) -> None:
    card = await ask(bot, chat, "help", "What I can do")
    for command in (
        "status [name]",
        "now [name]",
        "history [name]",
        "settings [name]",
        "pause [name]",
        "resume [name]",
        "disconnect [name]",
        "connect",
    ):
        assert command in card.card_text
    if chat.is_channel:
        assert "mention me first" in card.card_text
    mark = bot.connector.mark()
    await chat.say("/sync frobnicate")
    await bot.connector.wait_for_text("I don't know “frobnicate”", since=mark)
    await bot.connector.wait_for_card("What I can do", since=mark)
    # connect hands over to the setup.
    await ask(bot, chat, "/sync connect", "Connect to Xero")


async def test_no_connection_yet(bot: BotHarness, chat: Chat) -> None:
    card = await ask(bot, chat, "status", "No connection in this chat yet")
    assert "connect" in card.card_text


async def test_several_connections_ask_which_one(bot: BotHarness, chat: Chat) -> None:
    nz = await connect_in(bot, chat, name="NZ books")
    uk = await connect_in(bot, chat, name="UK books", tenant_id=UK_TENANT_ID)
    choice = await ask(bot, chat, "status", "Which connection?")
    options = choice.inputs()["connection_id"]["choices"]
    assert {o["value"] for o in options} == {nz.id, uk.id}
    mark = bot.connector.mark()
    await chat.click(choice, "Continue", {"connection_id": uk.id})
    status = await bot.connector.wait_for_card("Sync status", since=mark)
    assert "UK books" in status.card_text
    # A name that matches nothing: the same choice, saying so.
    choice = await ask(bot, chat, "history Narnia", "Which connection?")
    assert "No connection in this chat is called “Narnia”" in choice.card_text
    # A name picks directly, in any case.
    status = await ask(bot, chat, "status nz BOOKS", "Sync status")
    assert "NZ books" in status.card_text


async def test_buttons_on_cards_run_their_command(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    await bot.harness.run(connection.id)
    status = await ask(bot, chat, "status", "Sync status")
    mark = bot.connector.mark()
    await chat.click(status, "History")
    await bot.connector.wait_for_card("Latest run", since=mark)
    mark = bot.connector.mark()
    await chat.click(status, "Settings")
    await bot.connector.wait_for_card("Settings:", since=mark)
