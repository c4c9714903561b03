"""`settings`: the pre-filled card, a Save that reaches the store and Dynamics 365, errors on the card."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import NotifyMode
from tests.scenario.botharness import ALICE, BotHarness, Chat, open_bot
from tests.scenario.opsharness import connect_in, connector_row, install_ops, settings_row


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as opened:
        yield opened


@pytest.fixture(params=["personal", "channel"])
def chat(request: pytest.FixtureRequest, bot: BotHarness) -> Chat:
    return bot.personal(ALICE) if request.param == "personal" else bot.channel(ALICE)


def form_values(
    plan: str, *, name: str = "Acme", timezone: str = "Europe/London", notify: str = "every_run"
) -> dict[str, str]:
    return {"connection_name": name, "plan": plan, "timezone": timezone, "notify_mode": notify}


async def test_save_updates_the_store_and_dynamics_and_says_who_changed_what(
    bot: BotHarness, chat: Chat
) -> None:
    connection = await connect_in(bot, chat, name="Acme", plan="standard")
    connection = await bot.store.save_connection(connection.model_copy(update={"timezone": "Europe/London"}))
    mark = bot.connector.mark()
    await chat.say("settings")
    form = await bot.connector.wait_for_card("Settings: Acme", since=mark)
    inputs = form.inputs()
    assert inputs["connection_name"]["value"] == "Acme"
    assert inputs["plan"]["value"] == "standard"
    assert inputs["timezone"]["value"] == "Europe/London"
    assert inputs["notify_mode"]["value"] == "every_run"

    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values("premium", notify="failures_only"))
    said = await bot.connector.wait_for_text(
        "Plan changed from Standard to Premium by Alice Anders", since=mark
    )
    assert (
        "Notifications changed from “After every run” to “Only when a run fails” by Alice Anders" in said.text
    )
    saved = bot.connector.latest(form.activity_id)
    assert saved is not None
    assert "Settings of Acme saved" in saved.card_text
    assert not saved.has_action("Save")  # the form is gone: it cannot be saved twice

    stored = await bot.harness.connection(connection.id)
    assert stored.plan == "premium"
    assert stored.notify_mode == NotifyMode.FAILURES_ONLY
    assert await bot.store.get_due(connection.id) is not None  # rescheduled under the new plan

    # The Settings row is written first, then the Connector row: wait for both.
    async def dynamics_has_it() -> bool:
        row = settings_row(bot, stored)
        settings_saved = row["xdc_plan"] == "premium" and row["xdc_notifymode"] == "failures_only"
        return settings_saved and connector_row(bot, stored)["xdc_plan"] == "premium"

    await bot.wait_until(dynamics_has_it, timeout=10)


async def test_errors_go_back_onto_the_card_and_nothing_changes(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme")
    await connect_in(bot, chat, name="Other books")
    mark = bot.connector.mark()
    await chat.say("settings Acme")
    form = await bot.connector.wait_for_card("Settings: Acme", since=mark)

    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values("premium", timezone="Mars/Olympus_Mons"))
    again = await bot.connector.wait_for(
        lambda e: e.activity_id == form.activity_id and e.kind == "update", since=mark
    )
    assert "Choose a timezone from the list" in again.card_text
    assert again.has_action("Save")

    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values("premium", name="other BOOKS"))
    again = await bot.connector.wait_for(
        lambda e: e.activity_id == form.activity_id and e.kind == "update", since=mark
    )
    assert "already called “Other books”" in again.card_text
    stored = await bot.harness.connection(connection.id)
    assert stored.name == "Acme"
    assert stored.plan == connection.plan
    assert stored.version == connection.version


async def test_cancel_and_nothing_changed(bot: BotHarness, chat: Chat) -> None:
    connection = await connect_in(bot, chat, name="Acme", plan="premium")
    connection = await bot.store.save_connection(connection.model_copy(update={"timezone": "Europe/London"}))
    mark = bot.connector.mark()
    await chat.say("settings")
    form = await bot.connector.wait_for_card("Settings: Acme", since=mark)
    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values("premium"))
    await bot.connector.wait_for(
        lambda e: e.activity_id == form.activity_id and "Nothing changed" in e.card_text, since=mark
    )

    mark = bot.connector.mark()
    await chat.say("settings")
    form = await bot.connector.wait_for_card("Settings: Acme", since=mark)
    mark = bot.connector.mark()
    await chat.click(form, "Cancel")
    await bot.connector.wait_for(
        lambda e: e.activity_id == form.activity_id and "unchanged" in e.card_text, since=mark
    )
    assert (await bot.harness.connection(connection.id)).version == connection.version
