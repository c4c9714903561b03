"""A card after every run, in the connection's conversation (in a channel, in its own thread), as the
connection's notify mode says; kept up to date across a restart; for runs of other processes too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.storage.base import Connection, NotifyMode, RecordFailure, RunOutcome, RunRecord
from bot.sync.engine import SyncEngine
from bot.sync.ports import NullNotifier
from bot.sync.scheduler import Scheduler
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, open_bot
from tests.scenario.opsharness import connect_in, install_ops, ops


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


@pytest.fixture(params=["personal", "channel"])
def chat(request: pytest.FixtureRequest, bot: BotHarness) -> Chat:
    return bot.personal(ALICE) if request.param == "personal" else bot.channel(ALICE)


async def with_mode(bot: BotHarness, connection: Connection, mode: NotifyMode) -> Connection:
    return await bot.store.save_connection(connection.model_copy(update={"notify_mode": mode}))


async def run_cards(bot: BotHarness, since: int) -> list[Outbound]:
    """The run cards posted since `since`, each in its latest version, once every delivery is done."""
    assert await ops(bot).sender.drain(10)
    posted = [e for e in bot.connector.sent_cards(since) if "Sync" in e.card_text]
    latest = [bot.connector.latest(e.activity_id) for e in posted]
    return [e for e in latest if e is not None]


async def test_a_result_card_after_a_scheduled_run(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme")
    mark = bot.connector.mark()
    await bot.harness.run(
        connection.id, "schedule", next_run_at=bot.sandboxes.clock.now() + timedelta(minutes=5)
    )
    [card] = await run_cards(bot, mark)
    text = card.card_text
    assert "✅ Sync done" in text
    assert "Acme" in text
    for label in (
        "Chart of Accounts",
        "Tax Rates",
        "Branding Themes",
        "Created",
        "Updated",
        "Unchanged",
        "Deactivated",
        "Failed",
        "Took",
        "Next run",
    ):
        assert label in text, label
    # The progress card was posted first and then updated in place.
    assert [e.kind for e in bot.connector.outbound[mark:] if e.activity_id == card.activity_id][
        -1
    ] == "update"
    if chat.is_channel:
        assert card.conversation_id == f"{chat.channel_id};messageid={connection.thread_activity_id}"
    else:
        assert card.conversation_id == chat.conversation_id


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # (first run: changes, second run: nothing changed, third run: failed)
        (NotifyMode.EVERY_RUN, [True, True, True]),
        (NotifyMode.CHANGES_OR_FAILURES, [True, False, True]),
        (NotifyMode.FAILURES_ONLY, [False, False, True]),
    ],
)
async def test_which_runs_get_a_card(bot: BotHarness, mode: NotifyMode, expected: list[bool]) -> None:
    chat = bot.personal(ALICE)
    connection = await with_mode(bot, await connect_in(bot, chat), mode)
    got: list[bool] = []
    for n in range(3):
        if n == 2:
            bot.sandboxes.xero.fail_next(1, 400)
        mark = bot.connector.mark()
        run = await bot.harness.run(connection.id, "schedule")
        cards = await run_cards(bot, mark)
        got.append(bool(cards))
        if cards:
            assert ("Sync failed" in cards[0].card_text) == (run.outcome == RunOutcome.FAILED)
    assert got == expected


async def test_a_run_somebody_asked_for_always_gets_its_card(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await with_mode(bot, await connect_in(bot, chat), NotifyMode.FAILURES_ONLY)
    mark = bot.connector.mark()
    await bot.harness.run(connection.id, "on_demand")
    [card] = await run_cards(bot, mark)
    assert "Sync done" in card.card_text


async def test_up_to_ten_failed_records_with_reasons(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    now = bot.sandboxes.clock.now()
    run = RunRecord(
        id="run-partial",
        connection_id=connection.id,
        trigger="schedule",
        started_at=now - timedelta(seconds=42),
        finished_at=now,
        outcome=RunOutcome.PARTIAL,
        failures=[
            RecordFailure(entity="accounts", key=f"acc-{n}", reason=f"reason number {n}") for n in range(15)
        ],
    )
    mark = bot.connector.mark()
    await ops(bot).notifier.run_finished(connection, run)
    [card] = await run_cards(bot, mark)
    text = card.card_text
    assert "Records that failed (15)" in text
    assert all(f"reason number {n}" in text for n in range(10))
    assert "reason number 10" not in text
    assert "…and 5 more." in text
    assert "42 s" in text


async def test_the_card_of_a_run_is_found_again_after_a_restart(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    started = bot.sandboxes.clock.now()
    running = RunRecord(id="run-r", connection_id=connection.id, trigger="on_demand", started_at=started)
    mark = bot.connector.mark()
    await ops(bot).notifier.run_started(connection, running)
    [progress] = await run_cards(bot, mark)
    assert "Sync running" in progress.card_text

    await bot.restart()  # nothing in memory survives
    finished = running.model_copy(
        update={"outcome": RunOutcome.SUCCEEDED, "finished_at": started + timedelta(seconds=3)}
    )
    mark = bot.connector.mark()
    await ops(bot).notifier.run_finished(connection, finished)
    assert await ops(bot).sender.drain(10)
    [update] = bot.connector.outbound[mark:]
    assert update.kind == "update"
    assert update.activity_id == progress.activity_id
    assert "Sync done" in update.card_text


async def test_runs_of_a_worker_process_are_reported_by_the_watcher(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    runtime = bot.runtime
    # A worker: the same sync core with a notifier that tells nobody.
    worker_engine = SyncEngine(
        bot.store, runtime.xero, runtime.dataverse_factory, NullNotifier(), bot.sandboxes.clock
    )
    mark = bot.connector.mark()
    tail = await bot.store.run_events_tail()
    run = await worker_engine.run(connection.id, "schedule")
    assert await run_cards(bot, mark) == []
    # The engine told the feed, which is how the bot's watcher learns of it.
    events, _ = await bot.store.read_run_events(tail, 10)
    assert [(e.run_id, e.kind.value) for e in events] == [(run.id, "started"), (run.id, "finished")]
    watcher = ops(bot).watcher
    await bot.wait_until(lambda: _reported(watcher), timeout=5)
    [card] = await run_cards(bot, mark)
    assert "Sync done" in card.card_text
    # Reported once, whatever the watcher sees later.
    assert await watcher.scan_once() == 0
    assert await run_cards(bot, mark) == [card]
    assert run.outcome == RunOutcome.SUCCEEDED


async def _reported(watcher: object) -> bool:
    return bool(await watcher.scan_once())  # type: ignore[attr-defined]


async def test_sync_now_with_a_separate_worker(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat)
    runtime = bot.runtime
    worker = Scheduler(
        bot.store,
        SyncEngine(bot.store, runtime.xero, runtime.dataverse_factory, NullNotifier(), bot.sandboxes.clock),
        owner="worker-1",
        poll_seconds=0.1,
        lease_seconds=5,
        clock=bot.sandboxes.clock,
    )
    await worker.start()
    await ops(bot).watcher.start()
    try:
        mark = bot.connector.mark()
        await chat.say("now")
        ack = await bot.connector.wait_for_card("Sync running", since=mark)
        done = await bot.connector.wait_for(
            lambda e: e.activity_id == ack.activity_id and "Sync done" in e.card_text, since=mark, timeout=20
        )
        assert done.kind == "update"
        assert [r.outcome for r in await bot.store.list_runs(connection.id, 5)] == [RunOutcome.SUCCEEDED]
    finally:
        await ops(bot).watcher.stop()
        await worker.stop(5)
