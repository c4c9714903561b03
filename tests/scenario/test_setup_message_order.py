"""The setup's "created" message comes before anything the first run posts, in a group chat and a channel.

The first run reports through the proactive queue, on its own; the message is the setup turn's reply.
Teams is made slow to accept that one message (as it is under load), which, when the run was started
before the message was sent, let the run's card reach the chat first and the chat read backwards.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.scenario.botharness import (
    ALICE,
    BotHarness,
    Chat,
    FakeConnector,
    Outbound,
    connect_via_chat,
    open_bot,
)

CREATED = "created; the first sync is running now"
# Longer than a first run against the sandboxes takes, card included (well under a second here).
SLOW_SECONDS = 2.0
RUN_CARD = re.compile(r"Sync (running|done|failed)")


class GroupChat(Chat):
    """A Teams group chat: one conversation for several people, no threads, `conversationType: groupChat`."""

    def _conversation(self, thread: str) -> dict[str, Any]:
        return {"id": self.conversation_id, "conversationType": "groupChat", "isGroup": True}


@pytest.fixture
def slow_created_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake Bot Connector takes SLOW_SECONDS to accept the "created" message (and only that one)."""
    original = FakeConnector._send

    async def slow(self: FakeConnector, request: web.Request) -> web.Response:
        body = await request.json()
        if CREATED in str(body.get("text") or ""):
            await asyncio.sleep(SLOW_SECONDS)
        return await original(self, request)

    monkeypatch.setattr(FakeConnector, "_send", slow)


@pytest.fixture
async def bot(tmp_path: Path, slow_created_message: None) -> AsyncIterator[BotHarness]:
    # The shipped composition with its scheduler running: the first run really runs and posts its card.
    async with open_bot(tmp_path, use_app=True, run_scheduler=True) as opened:
        yield opened


def _chat(bot: BotHarness, kind: str) -> Chat:
    if kind == "channel":
        return bot.channel(ALICE)
    return GroupChat(bot, ALICE, conversation_id=f"19:group-{uuid.uuid4().hex[:8]}@thread.v2")


def _new_messages(bot: BotHarness, since: int) -> list[Outbound]:
    return [e for e in bot.connector.outbound[since:] if e.kind in ("send", "reply", "create")]


@pytest.mark.parametrize("kind", ["group chat", "channel"])
async def test_created_message_comes_before_the_first_runs_cards(bot: BotHarness, kind: str) -> None:
    chat = _chat(bot, kind)
    mark = bot.connector.mark()
    connection = await connect_via_chat(chat, name=f"Order in a {kind}")
    await bot.connector.wait_for_card("✅ Sync done", since=mark, timeout=30)

    messages = _new_messages(bot, mark)
    created = [n for n, e in enumerate(messages) if CREATED in e.text]
    run_cards = [n for n, e in enumerate(messages) if e.card is not None and RUN_CARD.search(e.card_text)]
    assert len(created) == 1, [e.text for e in messages]
    assert run_cards, "the first run posted no card"
    assert created[0] < run_cards[0], (
        "the first run's card reached the chat before the 'created' message: "
        f"{[(e.text or e.card_text)[:60] for e in messages]}"
    )
    # Both in the connection's conversation (in a channel, the setup's thread).
    first_card = messages[run_cards[0]]
    assert first_card.conversation_id.split(";")[0] == messages[created[0]].conversation_id.split(";")[0]
    assert connection.conversation_key == chat.key
