"""`disconnect`: a confirmation, then the Xero grant revoked and its connection removed, the Dynamics
sign-in forgotten, the Connector record marked disconnected, the schedule stopped, nothing kept here."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import AuthError
from bot.storage.base import TokenKind
from bot.sync.tables import ConnectorStatus
from sandbox.xero.seed import DEMO_EMAIL
from tests.scenario.botharness import ALICE, BotHarness, Chat, open_bot
from tests.scenario.opsharness import connect_in, connector_row, install_ops


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as opened:
        yield opened


@pytest.fixture(params=["personal", "channel"])
def chat(request: pytest.FixtureRequest, bot: BotHarness) -> Chat:
    return bot.personal(ALICE) if request.param == "personal" else bot.channel(ALICE)


async def test_disconnect_undoes_every_sign_in_and_forgets_the_connection(
    bot: BotHarness, chat: Chat
) -> None:
    connection = await connect_in(bot, chat, name="Acme")
    await bot.harness.run(connection.id)
    await bot.store.schedule(connection.id, bot.sandboxes.clock.now())
    xero_tokens = await bot.runtime.xero_tokens.load(connection.id)
    assert xero_tokens is not None
    assert any(c["tenantId"] == connection.xero_tenant_id for c in bot.sandboxes.xero.connections(DEMO_EMAIL))

    mark = bot.connector.mark()
    await chat.say("/sync disconnect")
    confirm = await bot.connector.wait_for_card("Disconnect?", since=mark)
    assert connection.xero_org_name in confirm.card_text
    mark = bot.connector.mark()
    await chat.click(confirm, "Disconnect")
    await bot.connector.wait_for(
        lambda e: e.activity_id == confirm.activity_id and "Disconnecting" in e.card_text, since=mark
    )
    done = await bot.connector.wait_for(
        lambda e: e.activity_id == confirm.activity_id and "is disconnected" in e.card_text,
        since=mark,
        timeout=15,
    )
    assert "Disconnected by Alice Anders" in done.card_text
    assert "couldn't" not in done.card_text  # every step worked

    # Xero: the organisation's connection is gone and the refresh token no longer works.
    assert not any(
        c["tenantId"] == connection.xero_tenant_id for c in bot.sandboxes.xero.connections(DEMO_EMAIL)
    )
    with pytest.raises(AuthError):
        await bot.runtime.xero_oauth.refresh(xero_tokens.refresh_token)
    # Dynamics: the Connector record says so; its data stays.
    assert connector_row(bot, connection)["xdc_status"] == ConnectorStatus.DISCONNECTED
    # Here: no tokens, no schedule, no connection.
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) is None
    assert await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS) is None
    assert await bot.store.get_due(connection.id) is None
    assert await bot.store.get_connection(connection.id) is None
    await chat.say("status")
    await bot.connector.wait_for_card("No connection in this chat yet", since=mark)


async def test_keep_it_changes_nothing(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat)
    mark = bot.connector.mark()
    await chat.say("disconnect")
    confirm = await bot.connector.wait_for_card("Disconnect?", since=mark)
    mark = bot.connector.mark()
    await chat.click(confirm, "Keep it")
    await bot.connector.wait_for(
        lambda e: e.activity_id == confirm.activity_id and "stays connected" in e.card_text, since=mark
    )
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) is not None
    assert (await bot.harness.connection(connection.id)).version == connection.version


async def test_xero_refusing_is_reported_and_nothing_usable_stays(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    bot.sandboxes.xero.fail_next(10, 400)
    mark = bot.connector.mark()
    await chat.say("disconnect")
    confirm = await bot.connector.wait_for_card("Disconnect?", since=mark)
    await chat.click(confirm, "Disconnect")
    done = await bot.connector.wait_for(
        lambda e: e.activity_id == confirm.activity_id and "is disconnected" in e.card_text,
        since=mark,
        timeout=30,
    )
    assert "couldn't revoke the Xero sign-in" in done.card_text
    assert connector_row(bot, connection)["xdc_status"] == ConnectorStatus.DISCONNECTED
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) is None
    assert await bot.store.get_connection(connection.id) is None
