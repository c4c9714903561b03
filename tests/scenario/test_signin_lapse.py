"""Sign-ins that lapse while nobody looks: the sign-in keeper keeps a paused connection's sign-ins alive
and tells the connection's chat, once, with the Reconnect button, when one is about to lapse or has.

Days pass on the sandboxes' clock (Xero drops a refresh token unused for 60 days; the bot's Xero token
provider uses that clock too); the keeper ticks as its periodic task would, once a day here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.storage.base import Connection, ConnectionStatus, RunOutcome
from bot.sync.keepalive import SignInKeeper
from bot.sync.ports import AttentionReason
from bot.teams.notifier import TeamsNotifier
from sandbox.xero.seed import DEMO_EMAIL
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, open_bot
from tests.scenario.opsharness import connect_in, install_ops, ops

pytestmark = pytest.mark.timeout(120)
DAY = 86400


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as opened:
        yield opened


@pytest.fixture(params=["personal", "channel"])
def chat(request: pytest.FixtureRequest, bot: BotHarness) -> Chat:
    return bot.personal(ALICE) if request.param == "personal" else bot.channel(ALICE)


def keeper(bot: BotHarness) -> SignInKeeper:
    """The keeper as the app builds it, on the sandboxes' clock. Its Teams notifier repeats an alert
    at once if asked (no quiet period), so one card means the keeper asked once."""
    notifier = TeamsNotifier(ops(bot).sender, ops(bot).book, connections=bot.store, alert_quiet=timedelta(0))
    return SignInKeeper(
        bot.store,
        bot.runtime.xero_tokens,
        bot.runtime.dynamics_auth,
        notifier,
        discovery_url=bot.settings.dataverse_discovery_url,
        clock=bot.sandboxes.clock,
    )


async def say(bot: BotHarness, chat: Chat, text: str, fragment: str) -> Outbound:
    mark = bot.connector.mark()
    await chat.say(text)
    return await bot.connector.wait_for_card(fragment, since=mark)


async def alerts(bot: BotHarness, since: int) -> list[Outbound]:
    assert await ops(bot).sender.drain(10)
    return [e for e in bot.connector.sent_cards(since) if e.card_text.startswith("⚠️")]


def xero_refreshes(bot: BotHarness) -> int:
    return sum(
        1
        for r in bot.sandboxes.xero.requests
        if r.path == "/connect/token" and r.form.get("grant_type") == "refresh_token"
    )


async def pause_for_59_days(bot: BotHarness, chat: Chat, keeper: SignInKeeper | None) -> Connection:
    """Set up on day 0, paused on day 5 (no run used the sign-in meanwhile), resumed on day 64."""
    connection = await connect_in(bot, chat, name="Acme")
    bot.sandboxes.clock.advance(5 * DAY)
    ack = await say(bot, chat, "pause", "Pausing")
    await bot.connector.wait_for(lambda e: e.activity_id == ack.activity_id and "is paused" in e.card_text)
    for _ in range(59):
        bot.sandboxes.clock.advance(DAY)
        if keeper is not None:
            await keeper.tick()
    await say(bot, chat, "resume", "Resuming")
    return connection


async def finished_run(bot: BotHarness, connection: Connection) -> RunOutcome:
    async def done() -> bool:
        runs = await bot.store.list_runs(connection.id, 1)
        return bool(runs) and runs[0].outcome != RunOutcome.RUNNING

    await bot.wait_until(done, timeout=30)
    return (await bot.store.list_runs(connection.id, 1))[0].outcome


async def test_a_connection_paused_for_59_days_runs_when_resumed(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    before = xero_refreshes(bot)
    connection = await pause_for_59_days(bot, chat, keeper(bot))
    # The keeper renewed the Xero sign-in while the connection was paused (on days 30 and 60: 30 days
    # idle is its threshold), so the run after the resume needs no reconnect.
    assert xero_refreshes(bot) - before >= 2
    mark = bot.connector.mark()
    assert await finished_run(bot, connection) == RunOutcome.SUCCEEDED
    assert (await bot.harness.connection(connection.id)).status == ConnectionStatus.ACTIVE
    assert await alerts(bot, mark) == []


async def test_without_the_keeper_the_same_pause_needs_a_reconnect(bot: BotHarness) -> None:
    # The control: what the test above would see if nothing kept the sign-in alive.
    chat = bot.personal(ALICE)
    connection = await pause_for_59_days(bot, chat, None)
    assert await finished_run(bot, connection) == RunOutcome.FAILED
    assert (await bot.harness.connection(connection.id)).status == ConnectionStatus.NEEDS_RECONNECTION


async def test_a_xero_sign_in_about_to_lapse_is_told_once_with_reconnect(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme")
    k = keeper(bot)
    # The keeper was off for 55 days, and now Xero refuses to refresh (not the grant: the request).
    bot.sandboxes.clock.advance(55 * DAY)
    bot.sandboxes.xero.fail_next(100, 400, path_prefix="/connect/token")
    mark = bot.connector.mark()

    report = await k.tick()
    assert report.warned == [(connection.id, AttentionReason.XERO_TOKEN_EXPIRING)]
    for _ in range(3):  # the next ticks try again, and tell nobody again
        bot.sandboxes.clock.advance(2 * 3600)
        assert (await k.tick()).warned == []
    [alert] = await alerts(bot, mark)
    assert "The Xero sign-in expires soon" in alert.card_text
    assert alert.has_action("Reconnect Xero")
    if chat.is_channel:
        assert alert.conversation_id == f"{chat.channel_id};messageid={connection.thread_activity_id}"
    else:
        assert alert.conversation_id == chat.conversation_id

    # The button leads to the Xero step of the setup, before the sign-in has lapsed.
    mark = bot.connector.mark()
    await chat.click(alert, "Reconnect Xero")
    step = await bot.connector.wait_for(
        lambda e: e.card is not None and e.has_action("Connect to Xero"), since=mark
    )
    assert not step.has_action("Connect to Dynamics 365")


async def test_a_refused_xero_sign_in_of_a_paused_connection_is_told_once(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat, name="Acme")
    await say(bot, chat, "pause", "Pausing")
    k = keeper(bot)
    bot.sandboxes.xero.revoke_user_tokens(DEMO_EMAIL)
    bot.sandboxes.clock.advance(31 * DAY)
    mark = bot.connector.mark()

    assert (await k.tick()).warned == [(connection.id, AttentionReason.XERO_RECONNECT)]
    for _ in range(3):
        bot.sandboxes.clock.advance(DAY + 60)
        assert (await k.tick()).warned == []
    [alert] = await alerts(bot, mark)
    assert "Xero needs you to sign in again" in alert.card_text
    assert alert.has_action("Reconnect Xero")
