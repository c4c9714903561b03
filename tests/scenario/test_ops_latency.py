"""Every command answers in well under a second while a sync is running against slow providers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.storage.base import RunOutcome
from tests.scenario.botharness import ALICE, BotHarness, Chat, open_bot
from tests.scenario.opsharness import connect_in, install_ops

LIMIT = 1.0
COMMANDS = (
    "status",
    "/sync history",
    "settings",
    "now",  # joins the run under way
    "help",
    "disconnect",  # the confirmation card
    "pause",
    "resume",
    "frobnicate",
    "connect",
)


async def timed(bot: BotHarness, chat: Chat, text: str) -> tuple[float, float]:
    """(seconds until the bot's first answer reached the connector, seconds for the whole HTTP turn)."""
    loop = asyncio.get_running_loop()
    mark = bot.connector.mark()
    started = loop.time()
    turn = asyncio.create_task(chat.say(text))
    first = await bot.connector.wait_for(
        lambda e: e.kind in ("reply", "send", "update", "create"), since=mark
    )
    response = await turn
    assert response.status_code < 300, text
    return first.at - started, loop.time() - started


@pytest.mark.parametrize("where", ["personal", "channel"])
async def test_commands_answer_at_once_while_a_sync_runs(tmp_path: Path, where: str) -> None:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as bot:
        chat = bot.personal(ALICE) if where == "personal" else bot.channel(ALICE)
        connection = await connect_in(bot, chat)
        bot.sandboxes.xero.set_latency(0.6)
        bot.sandboxes.dataverse.set_latency(0.6)
        mark = bot.connector.mark()
        await chat.say("now")
        await bot.connector.wait_for_card("Sync running", since=mark)

        async def running() -> bool:
            runs = await bot.store.list_runs(connection.id, 1)
            return bool(runs) and runs[0].outcome == RunOutcome.RUNNING

        await bot.wait_until(running)
        timings: dict[str, tuple[float, float]] = {}
        for text in COMMANDS:
            timings[text] = await timed(bot, chat, text)
        # The sync was under way for all of them.
        assert await running(), "the sync finished before the commands did: raise the sandbox latency"
        slow = {text: t for text, t in timings.items() if max(t) >= LIMIT}
        assert not slow, f"answered in {LIMIT}s or more: {slow}"
        bot.sandboxes.xero.set_latency(0)
        bot.sandboxes.dataverse.set_latency(0)
