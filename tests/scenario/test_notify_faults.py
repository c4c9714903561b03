"""Notifications under faults: Teams failing never fails a run; a conversation the bot was removed from
is marked and skipped; a burst of 100 cards to one conversation arrives whole and in order through 429s."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botbuilder.schema import ChannelAccount, ConversationAccount, ConversationReference

from bot.config import Settings
from bot.storage.base import Connection, ConversationRef, NotifyMode, RunOutcome, RunRecord
from bot.storage.sqlite import SqliteStore
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.teams.adapter import build_adapter
from bot.teams.notifier import TeamsNotifier
from bot.teams.proactive import ProactiveSender, RateWindow
from bot.teams.runcards import RunCardBook
from tests.scenario.botharness import ALICE, BotHarness, open_bot
from tests.scenario.opsharness import ThrottlingConnector, connect_in, install_ops, ops


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


def errors_from_us(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("bot.")
    ]


async def test_teams_failing_never_fails_the_run(bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    bot.connector.fail_next(400, times=1000)
    with caplog.at_level(logging.INFO):
        run = await bot.harness.run(connection.id, "schedule")
        await ops(bot).notifier.needs_attention(connection, AttentionReason.REPEATED_FAILURES, AttentionDetail(error="x", failed_runs=3))
        assert await ops(bot).sender.drain(10)
    assert run.outcome == RunOutcome.SUCCEEDED
    stored = await bot.harness.connection(connection.id)
    assert stored.last_outcome == RunOutcome.SUCCEEDED
    assert errors_from_us(caplog) == []
    assert any("could not deliver" in r.getMessage() for r in caplog.records)


async def test_a_conversation_the_bot_was_removed_from_is_marked_and_skipped(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    chat = bot.channel(ALICE)
    connection = await connect_in(bot, chat)
    bot.connector.fail_next(403)
    with caplog.at_level(logging.INFO):
        first = await bot.harness.run(connection.id, "schedule")
        assert await ops(bot).sender.drain(10)
    assert first.outcome == RunOutcome.SUCCEEDED
    reference = await bot.store.get_reference(chat.key)
    assert reference is not None
    assert reference.removed
    mark = bot.connector.mark()
    second = await bot.harness.run(connection.id, "schedule")
    assert await ops(bot).sender.drain(10)
    assert second.outcome == RunOutcome.SUCCEEDED
    assert bot.connector.mark() == mark  # not even tried
    assert errors_from_us(caplog) == []
    # Added back to the conversation (Teams sends installationUpdate): notifications resume.
    await chat.install()
    mark = bot.connector.mark()
    await bot.harness.run(connection.id, "schedule")
    assert await ops(bot).sender.drain(10)
    assert any("Sync" in e.card_text for e in bot.connector.sent_cards(mark))


# ---- a burst of 100 -----------------------------------------------------------------------------------


@pytest.fixture
async def throttled(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, ThrottlingConnector]]:
    store = await SqliteStore.open(tmp_path / "store.db")
    connector = ThrottlingConnector(limit=10, seconds=0.2, retry_after=0.05, every=7)
    await connector.start()
    yield store, connector
    await connector.stop()
    await store.close()


async def test_a_burst_of_100_arrives_complete_and_in_order_through_429s(
    throttled: tuple[SqliteStore, ThrottlingConnector], caplog: pytest.LogCaptureFixture
) -> None:
    store, connector = throttled
    conversation = "19:finance@thread.tacv2"
    reference = ConversationReference(
        channel_id="msteams",
        service_url=connector.url,
        conversation=ConversationAccount(id=conversation, conversation_type="channel", tenant_id="t1"),
        bot=ChannelAccount(id="28:bot", name="Xero Sync"),
        user=ChannelAccount(id="29:alice", name="Alice"),
    )
    key = f"msteams:{conversation}"
    await store.save_reference(
        ConversationRef(
            key=key, teams_tenant_id="t1", conversation_type="channel", reference=reference.serialize()
        )
    )
    adapter = build_adapter(Settings(_env_file=None, sandbox=True))  # type: ignore[call-arg]
    # A limiter far above the connector's window: the connector's 429s are what is being survived.
    sender = ProactiveSender(
        adapter, store, "", windows=(RateWindow(1000, 1.0),), base_wait=0.05, attempts=12
    )
    notifier = TeamsNotifier(sender, RunCardBook(store))
    connection = Connection(
        id="c-burst",
        name="Burst",
        teams_tenant_id="t1",
        conversation_key=key,
        created_by_aad_id="alice",
        xero_tenant_id="x",
        thread_activity_id="1700000000000",
        notify_mode=NotifyMode.EVERY_RUN,
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with caplog.at_level(logging.DEBUG):
        for n in range(100):
            run = RunRecord(
                id=f"run-{n:03d}",
                connection_id=connection.id,
                trigger="schedule",
                started_at=start + timedelta(minutes=n),
                finished_at=start + timedelta(minutes=n, seconds=5),
                outcome=RunOutcome.FAILED,
                error=f"Burst number {n:03d}.",
            )
            await notifier.run_finished(connection, run)
        assert await sender.drain(60)
    cards = [e for e in connector.outbound if e.card is not None]
    numbers = [int(m.group(1)) for e in cards if (m := re.search(r"Burst number (\d{3})", e.card_text))]
    assert numbers == list(range(100))
    assert all(e.conversation_id == f"{conversation};messageid=1700000000000" for e in cards)
    assert connector.throttled["with"] > 0
    assert connector.throttled["without"] > 0
    assert sender.retries >= connector.throttled["with"] + connector.throttled["without"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and "429" in r.getMessage()] == []
