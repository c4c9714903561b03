"""Choosing what syncs and the environment's default connection, on the settings card, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.storage.base import Connection, RunOutcome
from bot.sync.tables import TAX_TYPE
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, open_bot
from tests.scenario.opsharness import connect_in, install_ops, settings_row

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as opened:
        yield opened


def form_values(connection: Connection, **switches: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "connection_name": connection.name,
        "plan": connection.plan,
        "timezone": connection.timezone,
        "notify_mode": connection.notify_mode.value,
    }
    for name in ("sync_accounts", "sync_tax_rates", "sync_branding_themes", "sync_tracking_categories"):
        values[name] = "true" if switches.get(name, True) else "false"
    values["is_default"] = "true" if switches.get("is_default", False) else "false"
    return values


async def open_settings(bot: BotHarness, chat: Chat, name: str) -> Outbound:
    mark = bot.connector.mark()
    await chat.say(f"settings {name}")
    return await bot.connector.wait_for_card(f"Settings: {name}", since=mark)


async def run_now(bot: BotHarness, chat: Chat) -> Outbound:
    mark = bot.connector.mark()
    await chat.say("now")
    ack = await bot.connector.wait_for_card("Sync running", since=mark)
    return await bot.connector.wait_for(
        lambda e: e.activity_id == ack.activity_id and "Sync done" in e.card_text, since=mark, timeout=30
    )


def tax_rate_calls(bot: BotHarness) -> int:
    return sum(1 for r in bot.sandboxes.xero.requests if r.path.endswith("/TaxRates"))


async def test_tax_rates_off_then_on_again(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_in(bot, chat, name="Acme")
    form = await open_settings(bot, chat, "Acme")
    inputs = form.inputs()
    assert inputs["sync_tax_rates"]["value"] == "true"
    assert inputs["is_default"]["type"] == "Input.Toggle"

    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values(connection, sync_tax_rates=False, is_default=True))
    said = await bot.connector.wait_for_text("Tax rates switched off", since=mark)
    assert "Alice Anders" in said.text
    stored = await bot.harness.connection(connection.id)
    assert not stored.sync_tax_rates
    assert stored.sync_accounts

    async def settings_say_off() -> bool:
        return settings_row(bot, stored)["xdc_synctaxrates"] is False

    await bot.wait_until(settings_say_off, timeout=10)

    before, writes_before = tax_rate_calls(bot), len(bot.sandboxes.dataverse.requests)
    done = await run_now(bot, chat)
    assert "Tax rates: skipped (switched off; rows in Dynamics left as they are)" in done.card_text
    assert tax_rate_calls(bot) == before  # not even read
    assert not [
        r
        for r in bot.sandboxes.dataverse.requests[writes_before:]
        if r.method != "GET" and f"/{TAX_TYPE.entity_set}" in r.path
    ]
    [run] = await bot.store.list_runs(connection.id, 1)
    assert run.skipped == ["tax_rates"]
    assert "tax_rates" not in run.counts
    assert run.outcome == RunOutcome.SUCCEEDED

    # On again: the next run reads them and writes them (this connection had never written them).
    form = await open_settings(bot, chat, "Acme")
    assert form.inputs()["sync_tax_rates"]["value"] == "false"
    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values(stored, sync_tax_rates=True, is_default=True))
    await bot.connector.wait_for_text("Tax rates switched on", since=mark)
    done = await run_now(bot, chat)
    assert "skipped" not in done.card_text
    assert tax_rate_calls(bot) == before + 1
    [run] = await bot.store.list_runs(connection.id, 1)
    assert run.skipped == []
    assert run.counts["tax_rates"].created == len(bot.sandboxes.xero.tax_rates(connection.xero_tenant_id))


async def test_a_second_default_clears_the_first_in_dynamics(bot: BotHarness) -> None:
    chat = bot.channel(ALICE)
    first = await connect_in(bot, chat, name="First books")
    second = await connect_in(bot, chat, name="Second books")
    assert first.dataverse_env_id == second.dataverse_env_id
    # The first of the environment is its default (as the setup decides); the card shows it.
    form = await open_settings(bot, chat, "First books")
    assert form.inputs()["is_default"]["value"] == "true"
    form = await open_settings(bot, chat, "Second books")
    assert form.inputs()["is_default"]["value"] == "false"

    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values(second, is_default=True))
    said = await bot.connector.wait_for_text("Made the default connection for", since=mark)
    assert second.dataverse_env_name in said.text

    async def dynamics_moved_it() -> bool:
        return (
            settings_row(bot, second)["xdc_isdefault"] is True
            and settings_row(bot, first)["xdc_isdefault"] is False
        )

    await bot.wait_until(dynamics_moved_it, timeout=10)
    assert (await bot.harness.connection(first.id)).is_default is False
    assert (await bot.harness.connection(second.id)).is_default is True

    # Leaving the environment without a default is refused, on the card.
    form = await open_settings(bot, chat, "Second books")
    mark = bot.connector.mark()
    await chat.click(form, "Save", form_values(second, is_default=False))
    again = await bot.connector.wait_for(
        lambda e: e.activity_id == form.activity_id and e.kind == "update", since=mark
    )
    assert "make it the default" in again.card_text
    assert (await bot.harness.connection(second.id)).is_default is True
