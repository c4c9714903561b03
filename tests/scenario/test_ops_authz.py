"""Who may do what: the connection exists only where it was set up and in that tenant; only its creator
changes it; a card naming another conversation's connection is refused and changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import ConnectionStatus, TokenKind
from bot.teams.authz import NOT_HERE
from cards.verbs import CardVerb
from sandbox.entra.directory import FABRIKAM, sandbox_uuid
from tests.scenario.botharness import ALICE, BOB, BotHarness, TeamsUser, open_bot
from tests.scenario.opsharness import connect_in, install_ops

MALLORY = TeamsUser("Mallory", sandbox_uuid("user:mallory@fabrikam.example"), tenant_id=FABRIKAM.id)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as opened:
        yield opened


async def test_others_in_the_channel_may_look_but_not_change(bot: BotHarness) -> None:
    channel = bot.channel(ALICE)
    connection = await connect_in(bot, channel, name="Acme")
    mark = bot.connector.mark()
    await channel.say("status", user=BOB)
    await bot.connector.wait_for_card("Sync status", since=mark)
    for command in ("pause", "resume", "settings", "disconnect"):
        mark = bot.connector.mark()
        await channel.say(command, user=BOB)
        await bot.connector.wait_for_text("Only Alice Anders", since=mark)
        assert not bot.connector.sent_cards(mark)
    # Alice's confirmation card, clicked by Bob.
    mark = bot.connector.mark()
    await channel.say("disconnect")
    confirm = await bot.connector.wait_for_card("Disconnect?", since=mark)
    mark = bot.connector.mark()
    await channel.click(confirm, "Disconnect", user=BOB)
    await bot.connector.wait_for_text("Only Alice Anders", since=mark)
    stored = await bot.harness.connection(connection.id)
    assert stored.status == ConnectionStatus.ACTIVE
    assert stored.version == connection.version


async def test_a_card_naming_another_conversations_connection_is_refused(bot: BotHarness) -> None:
    home = bot.personal(ALICE)
    connection = await connect_in(bot, home)
    elsewhere = bot.channel(ALICE)  # the same person, another conversation
    await elsewhere.say("help")
    forged = [
        {"verb": CardVerb.RUN_NOW.value, "connection_id": connection.id},
        {"verb": CardVerb.SHOW_STATUS.value, "connection_id": connection.id},
        {"verb": CardVerb.SHOW_HISTORY.value, "connection_id": connection.id},
        {"verb": CardVerb.OPEN_SETTINGS.value, "connection_id": connection.id},
        {"verb": CardVerb.RESUME_SYNC.value, "connection_id": connection.id},
        {"verb": CardVerb.RECONNECT_XERO.value, "connection_id": connection.id},
        {"verb": CardVerb.CONFIRM_DISCONNECT.value, "connection_id": connection.id},
        {"verb": CardVerb.PICK_CONNECTION.value, "command": "pause", "connection_id": connection.id},
        {
            "verb": CardVerb.SETTINGS_SUBMIT.value,
            "connection_id": connection.id,
            "connection_name": "Hijacked",
            "plan": "trial",
            "timezone": "UTC",
            "notify_mode": "failures_only",
        },
    ]
    for value in forged:
        mark = bot.connector.mark()
        activity = elsewhere.activity("message", value=value, replyToId="1700000000001")
        response = await elsewhere.post(activity)
        assert response.status_code < 500
        answer = await bot.connector.wait_for(lambda e: e.kind in ("reply", "send"), since=mark)
        assert NOT_HERE in answer.text, value["verb"]
    await asyncio.sleep(0.3)
    assert await bot.store.list_runs(connection.id, 5) == []
    stored = await bot.harness.connection(connection.id)
    assert stored.version == connection.version
    assert stored.name == connection.name
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) is not None


async def test_another_tenant_in_the_same_conversation_sees_nothing(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    mark = bot.connector.mark()
    await chat.say("status", user=MALLORY)
    await bot.connector.wait_for_card("No connection in this chat yet", since=mark)
    mark = bot.connector.mark()
    await chat.post(
        chat.activity("message", MALLORY, value={"verb": "run_now", "connection_id": connection.id})
    )
    answer = await bot.connector.wait_for(lambda e: e.kind in ("reply", "send"), since=mark)
    assert NOT_HERE in answer.text
