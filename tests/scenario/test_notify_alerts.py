"""Alerts from real runs against the sandboxes, each with the button that fixes its cause."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import Connection, ConnectionStatus
from bot.sync.ports import AttentionDetail, AttentionReason
from sandbox.xero.seed import DEMO_EMAIL, NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, open_bot
from tests.scenario.opsharness import connect_in, install_ops, ops


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


@pytest.fixture(params=["personal", "channel"])
def chat(request: pytest.FixtureRequest, bot: BotHarness) -> Chat:
    return bot.personal(ALICE) if request.param == "personal" else bot.channel(ALICE)


async def alerts(bot: BotHarness, since: int) -> list[Outbound]:
    assert await ops(bot).sender.drain(10)
    return [e for e in bot.connector.sent_cards(since) if e.card_text.startswith("⚠️")]


def in_connection_place(chat: Chat, connection: Connection, card: Outbound) -> None:
    if chat.is_channel:
        assert card.conversation_id == f"{chat.channel_id};messageid={connection.thread_activity_id}"
    else:
        assert card.conversation_id == chat.conversation_id


async def test_xero_sign_in_revoked_asks_to_reconnect_xero(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme")
    bot.sandboxes.xero.revoke_user_tokens(DEMO_EMAIL)
    bot.sandboxes.xero.expire_access_tokens()
    mark = bot.connector.mark()
    await bot.harness.run(connection.id, "schedule")
    [alert] = await alerts(bot, mark)
    assert "Xero needs you to sign in again" in alert.card_text
    in_connection_place(chat, connection, alert)
    assert (await bot.harness.connection(connection.id)).status == ConnectionStatus.NEEDS_RECONNECTION
    # The button restarts only the Xero step of the setup.
    mark = bot.connector.mark()
    await chat.click(alert, "Reconnect Xero")
    step = await bot.connector.wait_for(
        lambda e: e.card is not None and e.has_action("Connect to Xero"), since=mark
    )
    assert not step.has_action("Connect to Dynamics 365")


async def test_dynamics_sign_in_lost_asks_to_reconnect_dynamics(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    await bot.runtime.dynamics_auth.forget(connection.id)
    mark = bot.connector.mark()
    await bot.harness.run(connection.id, "schedule")
    [alert] = await alerts(bot, mark)
    assert "Dynamics 365 needs you to sign in again" in alert.card_text
    mark = bot.connector.mark()
    await chat.click(alert, "Reconnect Dynamics 365")
    step = await bot.connector.wait_for(
        lambda e: e.card is not None and "Dynamics 365" in e.card_text, since=mark
    )
    assert not step.has_action("Connect to Xero")


async def test_three_failed_runs_in_a_row(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    bot.sandboxes.xero.fail_next(4, 400, path_prefix="/api.xro/2.0/Organisation")
    mark = bot.connector.mark()
    for _ in range(4):
        await bot.harness.run(connection.id, "schedule")
    [alert] = await alerts(bot, mark)
    assert "The last runs failed" in alert.card_text
    assert alert.has_action("History")
    mark = bot.connector.mark()
    await chat.click(alert, "History")
    await bot.connector.wait_for_card("Recent runs", since=mark)


async def test_the_xero_organisation_changed_its_timezone(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    await bot.harness.run(connection.id, "schedule")
    bot.sandboxes.xero.org(NZ_TENANT_ID).organisation["Timezone"] = "GMTSTANDARDTIME"
    mark = bot.connector.mark()
    await bot.harness.run(connection.id, "schedule")
    [alert] = await alerts(bot, mark)
    assert "The timezones disagree" in alert.card_text
    assert "Europe/London" in alert.card_text
    mark = bot.connector.mark()
    await chat.click(alert, "Open settings")
    await bot.connector.wait_for_card("Settings:", since=mark)


async def test_the_daily_xero_allowance_is_nearly_used(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    bot.sandboxes.xero.limiter.daily = 503  # the run's four calls leave 499, under the warning level
    mark = bot.connector.mark()
    await bot.harness.run(connection.id, "schedule")
    [alert] = await alerts(bot, mark)
    assert "Xero's daily limit is nearly used up" in alert.card_text
    assert alert.has_action("Open settings")


async def test_the_same_alert_is_not_repeated_at_once(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    mark = bot.connector.mark()
    for _ in range(3):
        await ops(bot).notifier.needs_attention(
            connection,
            AttentionReason.TIMEZONE_MISMATCH,
            AttentionDetail(timezone_from="Pacific/Auckland", timezone_to="Australia/Sydney"),
        )
    await ops(bot).notifier.needs_attention(
        connection, AttentionReason.XERO_DAILY_LIMIT, AttentionDetail(calls_left=12)
    )
    assert len(await alerts(bot, mark)) == 2


async def test_every_alert_has_a_fixing_button(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    for reason in AttentionReason:
        mark = bot.connector.mark()
        await ops(bot).notifier.needs_attention(
            connection, reason, AttentionDetail(error=f"what the sync saw: {reason.value}")
        )
        [alert] = await alerts(bot, mark)
        assert f"what the sync saw: {reason.value}" in alert.card_text
        assert alert.actions(), reason
        assert all(a["data"]["connection_id"] == connection.id for a in alert.actions())


async def test_no_alert_for_a_connection_that_is_gone(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    await bot.store.delete_connection(connection.id)
    mark = bot.connector.mark()
    await ops(bot).notifier.needs_attention(
        connection, AttentionReason.XERO_RECONNECT, AttentionDetail(error="no tokens")
    )
    assert await alerts(bot, mark) == []
