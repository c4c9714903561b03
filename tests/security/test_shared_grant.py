"""Disconnect takes away only what is ours alone (issue 14, finding 4).

The attack reproduced: two connections in two chats (two creators) use the same Xero user and
organisation, so Xero keeps one connection for both, and revoking either one's refresh token ends the
user's grant to the app. Disconnecting one of them used to revoke the grant and delete the Xero
connection: the other stopped working. Now the other keeps working and the report says why the grant
stayed; the last one to go undoes it in Xero.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import ConnectionStatus, TokenKind
from sandbox.xero.seed import DEMO_EMAIL, NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BOB, BotHarness, open_bot
from tests.scenario.opsharness import connect_in, install_ops, ops

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


def live_xero_connections(bot: BotHarness) -> list[str]:
    return [c["tenantId"] for c in bot.sandboxes.xero.connections(DEMO_EMAIL)]


async def test_disconnecting_one_of_two_connections_sharing_a_xero_grant_keeps_the_other_working(
    bot: BotHarness,
) -> None:
    first = await connect_in(bot, bot.personal(ALICE), name="Alice's", tenant_id=NZ_TENANT_ID)
    second = await connect_in(bot, bot.channel(BOB), user=BOB, name="Bob's", tenant_id=NZ_TENANT_ID)
    assert first.xero_connection_id == second.xero_connection_id  # Xero: one per user, app and organisation
    assert live_xero_connections(bot).count(NZ_TENANT_ID) == 1

    report = await ops(bot).disconnector.disconnect(first.id, "Alice Anders")
    assert report is not None
    assert report.xero_shared
    assert not report.xero_revoked
    assert report.complete
    assert any("Another connection uses the same Xero sign-in" in note for note in report.notes)
    assert "Bob" not in " ".join(report.notes)  # nothing about the other connection is told

    # Nothing changed for the other connection: its Xero connection lives and its tokens work.
    assert NZ_TENANT_ID in live_xero_connections(bot)
    assert not [r for r in bot.sandboxes.xero.requests if r.path.endswith("/connect/revocation")]
    assert not [r for r in bot.sandboxes.xero.requests if r.method == "DELETE"]
    org = await bot.runtime.xero.organisation(second.id, NZ_TENANT_ID)
    assert org.name
    survivor = await bot.store.get_connection(second.id)
    assert survivor is not None
    assert survivor.status is ConnectionStatus.ACTIVE
    # Ours alone is gone: the first connection and its tokens.
    assert await bot.store.get_connection(first.id) is None
    assert await bot.store.get_tokens(first.id, TokenKind.XERO) is None

    # Control: the last connection using the grant does undo it in Xero.
    report = await ops(bot).disconnector.disconnect(second.id, "Bob Brown")
    assert report is not None
    assert not report.xero_shared
    assert report.xero_revoked
    assert report.xero_removed
    assert NZ_TENANT_ID not in live_xero_connections(bot)


async def test_the_same_xero_user_in_another_organisation_also_shares_the_grant(bot: BotHarness) -> None:
    """Revoking a refresh token ends the user's whole grant to the app, every organisation with it."""
    from sandbox.xero.seed import UK_TENANT_ID

    first = await connect_in(bot, bot.personal(ALICE), name="NZ", tenant_id=NZ_TENANT_ID)
    second = await connect_in(bot, bot.personal(BOB), user=BOB, name="UK", tenant_id=UK_TENANT_ID)
    assert first.xero_connection_id != second.xero_connection_id
    report = await ops(bot).disconnector.disconnect(first.id, "Alice Anders")
    assert report is not None
    assert report.xero_shared
    assert UK_TENANT_ID in live_xero_connections(bot)
    assert (await bot.runtime.xero.organisation(second.id, UK_TENANT_ID)).name


async def test_setup_warns_when_the_organisation_is_already_connected_in_another_chat(bot: BotHarness) -> None:
    from sandbox.xero.seed import UK_TENANT_ID
    from tests.scenario.botharness import start_setup

    await connect_in(bot, bot.channel(ALICE, team="board"), name="Board's", tenant_id=NZ_TENANT_ID)
    run = await start_setup(bot.personal(BOB))
    mark = bot.connector.mark()
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    await run.say(page.code)
    warning = await bot.connector.wait_for_text("already connected in another chat", since=mark)
    assert "Board" not in warning.text  # nothing about the other chat or its connection
    await run.card_with("Connected to Xero")

    # Control: an organisation connected nowhere else gets no warning.
    other = await start_setup(bot.personal(ALICE))
    mark = bot.connector.mark()
    page = await other.sign_in_xero(tenants=[UK_TENANT_ID])
    await other.say(page.code)
    await other.card_with("Connected to Xero")
    assert not [t for t in bot.connector.texts(mark) if "already connected in another chat" in t]
