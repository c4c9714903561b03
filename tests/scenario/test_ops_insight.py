"""`sync preview` and `sync why`, from a chat message to the sandboxes and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import RunOutcome
from bot.sync.mapping import Entity
from sandbox.xero.seed import NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, open_bot
from tests.scenario.opsharness import connect_in, install_ops

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        opened.chat = opened.personal(ALICE)  # type: ignore[attr-defined]
        yield opened


def chat_of(bot: BotHarness) -> Chat:
    chat: Chat = bot.chat  # type: ignore[attr-defined]
    return chat


async def ask(bot: BotHarness, text: str, fragment: str) -> Outbound:
    mark = bot.connector.mark()
    await chat_of(bot).say(text)
    return await bot.connector.wait_for_card(fragment, since=mark, timeout=20)


async def test_preview_lists_the_two_renamed_accounts_and_writes_nothing(bot: BotHarness) -> None:
    connection = await connect_in(bot, chat_of(bot), name="Acme")
    first = await bot.harness.run(connection.id)
    assert first.outcome == RunOutcome.SUCCEEDED
    accounts = bot.sandboxes.xero.accounts(NZ_TENANT_ID)
    renamed = [a for a in accounts if a.get("Code")][3:5]
    bot.sandboxes.clock.advance(2)
    for account in renamed:
        bot.sandboxes.xero.rename_account(NZ_TENANT_ID, account["AccountID"], f"{account['Name']} (new)")
    fingerprints = await bot.store.get_fingerprints(connection.id, Entity.ACCOUNTS.value)
    dv_mark = len(bot.sandboxes.dataverse.requests)

    card = await ask(bot, "sync preview", "What the next run would do")
    text = card.card_text
    assert "Chart of Accounts: 2 to update" in text
    for account in renamed:
        assert f"{account['Code']} {account['Name']} (new)" in text
    assert "Tax Rates: " in text
    assert "to update" not in text.split("Tax Rates:")[1].split("\n")[0]
    assert "nothing was written" in text.lower()
    assert [r for r in bot.sandboxes.dataverse.requests[dv_mark:] if r.method != "GET"] == []
    assert await bot.store.get_fingerprints(connection.id, Entity.ACCOUNTS.value) == fingerprints
    # The preview changed nothing: the next run still writes exactly those two.
    run = await bot.harness.run(connection.id)
    assert run.counts["accounts"].updated == 2


async def test_previews_are_limited_per_connection(bot: BotHarness) -> None:
    connection = await connect_in(bot, chat_of(bot), name="Acme")
    await bot.harness.run(connection.id)
    for _ in range(3):
        await ask(bot, "preview", "What the next run would do")
    calls = sum(1 for r in bot.sandboxes.xero.requests if r.path.startswith("/api.xro/2.0/"))
    await ask(bot, "preview", "Too many previews")
    assert sum(1 for r in bot.sandboxes.xero.requests if r.path.startswith("/api.xro/2.0/")) == calls


async def test_why_explains_an_account_by_its_code(bot: BotHarness) -> None:
    connection = await connect_in(bot, chat_of(bot), name="Acme")
    run = await bot.harness.run(connection.id)
    account = next(a for a in bot.sandboxes.xero.accounts(NZ_TENANT_ID) if a.get("Code") == "200")
    card = await ask(bot, "sync why 200", f"Why: Account 200 {account['Name']}")
    assert "Present" in card.card_text
    assert "Last written" in card.card_text
    assert "created" in card.card_text
    assert run.started_at.strftime("%Y-%m-%d") in card.card_text
    # After a run that found it unchanged, it says it was skipped as unchanged.
    await bot.harness.run(connection.id)
    card = await ask(bot, "why 200", f"Why: Account 200 {account['Name']}")
    assert "skipped as unchanged" in card.card_text
    # A tax rate by its tax type, in any case.
    rate = next(r for r in bot.sandboxes.xero.tax_rates(NZ_TENANT_ID) if r["TaxType"] == "OUTPUT2")
    card = await ask(bot, "why output2", f"Why: Tax rate {rate['Name']} (OUTPUT2)")
    assert "Present" in card.card_text


async def test_why_shows_the_reason_of_a_failed_write(bot: BotHarness) -> None:
    connection = await connect_in(bot, chat_of(bot), name="Acme")
    bot.sandboxes.xero.add_branding_theme(NZ_TENANT_ID, Name="Oversized Theme", SortOrder=2**31 + 5)
    run = await bot.harness.run(connection.id)
    assert run.outcome == RunOutcome.PARTIAL
    card = await ask(bot, "why oversized theme", "Why: Branding theme Oversized Theme")
    assert "Its last write failed" in card.card_text
    assert "Dataverse rejected the record" in card.card_text
    assert "Not there yet" in card.card_text
    assert "tries a failed record again" in card.card_text


async def test_an_ambiguous_name_gets_a_choice(bot: BotHarness) -> None:
    connection = await connect_in(bot, chat_of(bot), name="Acme")
    await bot.harness.run(connection.id)
    # "Sales" is an account (200) and an option of the Department tracking category.
    choice = await ask(bot, "why sales", "Which one?")
    titles = [a["title"] for a in choice.actions() if a.get("type") == "Action.Submit"]
    assert any(t.startswith("Account ") for t in titles)
    assert "Tracking option Sales" in titles
    mark = bot.connector.mark()
    await chat_of(bot).click(choice, "Tracking option Sales")
    card = await bot.connector.wait_for_card("Why: Tracking option Sales", since=mark, timeout=20)
    assert "Present" in card.card_text


async def test_why_finds_nothing_and_says_what_to_try(bot: BotHarness) -> None:
    connection = await connect_in(bot, chat_of(bot), name="Acme")
    await bot.harness.run(connection.id)
    card = await ask(bot, "why Narnia", "Nothing found")
    assert "account code" in card.card_text
