"""Bounded (issue 14, finding 6): one person cannot keep the bot busy for a whole chat, spend a
connection's on-demand runs alone, or grow a conversation's send queue without end; a refused
`Action.Execute` is answered with the refusal, not "Done.".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.storage.base import ConnectionStatus
from bot.teams.proactive import ProactiveSender
from bot.teams.router import PER_USER_MESSAGES, SLOW_DOWN
from bot.teams.run_now import OTHERS_ON_DEMAND_PER_DAY
from cards.verbs import CardVerb
from tests.scenario.botharness import ALICE, BOB, BotHarness, open_bot
from tests.scenario.opsharness import connect_in, install_ops

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


async def test_one_person_flooding_commands_is_slowed_down_and_others_are_not(bot: BotHarness) -> None:
    channel = bot.channel(ALICE)
    await connect_in(bot, channel, name="Acme")
    mark = bot.connector.mark()
    for _ in range(PER_USER_MESSAGES + 5):
        response = await channel.say("status", user=BOB)
        assert response.status_code < 300
    await bot.connector.wait_for_text(SLOW_DOWN, since=mark)
    slowed = [t for t in bot.connector.texts(mark) if t == SLOW_DOWN]
    answered = [c for c in bot.connector.sent_cards(mark) if "Sync status" in c.card_text]
    assert len(slowed) == 5
    assert len(answered) == PER_USER_MESSAGES  # the five over the limit ran nothing
    # Someone else in the same channel is answered as usual.
    mark = bot.connector.mark()
    await channel.say("status", user=ALICE)
    await bot.connector.wait_for_card("Sync status", since=mark)
    assert SLOW_DOWN not in bot.connector.texts(mark)


async def test_someone_other_than_the_creator_cannot_spend_the_daily_on_demand_runs(bot: BotHarness) -> None:
    channel = bot.channel(ALICE)
    connection = await connect_in(bot, channel, name="Acme")
    day = bot.sandboxes.clock.now().date()
    refused = "the most one person other than its creator may"
    for _ in range(OTHERS_ON_DEMAND_PER_DAY):
        mark = bot.connector.mark()
        await channel.say("now", user=BOB)
        await bot.connector.wait_for(lambda e: e.card is not None, since=mark)
        await bot.wait_until(lambda: _idle(bot, connection.id), timeout=30)
        assert not [c for c in bot.connector.sent_cards(mark) if refused in c.card_text]
    mark = bot.connector.mark()
    await channel.say("now", user=BOB)
    card = await bot.connector.wait_for_card(refused, since=mark)
    assert "The sync didn't start" in card.card_text
    used = await bot.store.incr_counter(f"on_demand:{connection.id}:{day.isoformat()}", 2 * 86400) - 1
    assert used <= OTHERS_ON_DEMAND_PER_DAY  # the refused one took nothing from the connection's allowance
    # The creator can still sync now.
    mark = bot.connector.mark()
    await channel.say("now", user=ALICE)
    await bot.connector.wait_for(lambda e: e.card is not None, since=mark)
    assert not [c for c in bot.connector.sent_cards(mark) if refused in c.card_text]


async def _idle(bot: BotHarness, connection_id: str) -> bool:
    return await bot.sync.running(connection_id) is None


async def test_a_refused_action_execute_says_so_not_done(bot: BotHarness) -> None:
    channel = bot.channel(ALICE)
    connection = await connect_in(bot, channel, name="Acme")
    value = {
        "action": {
            "type": "Action.Execute",
            "verb": CardVerb.CONFIRM_DISCONNECT.value,
            "data": {"connection_id": connection.id},
        },
        "trigger": "manual",
    }
    response = await channel.invoke("adaptiveCard/action", value, user=BOB)
    assert response.status_code == 200
    answer: dict[str, Any] = response.json()
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert answer["value"] != "Done."
    assert "Only Alice Anders" in answer["value"]
    stored = await bot.store.get_connection(connection.id)
    assert stored is not None
    assert stored.status is ConnectionStatus.ACTIVE


async def test_a_conversations_send_queue_is_bounded() -> None:
    class Idle:
        async def continue_conversation(self, *_: Any) -> None:  # never reached: the jobs block
            raise AssertionError

    class NoRefs:
        async def get_reference(self, key: str) -> None:
            return None

        async def save_reference(self, ref: Any) -> None: ...

        async def mark_removed(self, key: str) -> None: ...

    sender = ProactiveSender(Idle(), NoRefs(), "bot", max_queued=10)  # type: ignore[arg-type]
    gate = asyncio.Event()
    ran: list[int] = []

    def job(i: int) -> Any:
        async def run() -> None:
            await gate.wait()
            ran.append(i)

        return run

    for i in range(1000):
        sender.enqueue("conv-1", job(i))
    await asyncio.sleep(0)
    assert sender.pending() <= 11  # ten queued and the one running
    assert sender.dropped >= 989
    sender.enqueue("conv-2", job(-1))  # another conversation has its own queue
    gate.set()
    assert await sender.drain(5)
    assert ran[-10:] == list(range(990, 1000))  # the newest were kept
    assert -1 in ran
    await sender.close()
