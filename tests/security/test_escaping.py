"""Text from outside never reaches the chat as markdown, and the settings name check tells a chat
nothing about another chat's connections (issue 14, findings 2 and 6).

The attack reproduced: a Xero organisation named like a markdown link (anyone can name their Xero
organisation) is quoted by the bot in the setup's chat, where Teams would show a working link.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.teams.escape import md_outside
from sandbox.xero.seed import NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BOB, BotHarness, open_bot, start_setup
from tests.scenario.opsharness import connect_in, install_ops

pytestmark = pytest.mark.timeout(90)

PHISH = "Acme [Pay your invoice here](https://evil.example/pay) **now** <at>everyone</at>"
# A markdown link, an autolinked URL, emphasis or an HTML tag, as Teams would render them.
RENDERED = re.compile(r"\]\(|https?://|\*\*now|<at>")


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


def test_md_outside_keeps_every_markdown_character_literal() -> None:
    escaped = md_outside(PHISH + "\n# heading\n- item ![img](x) `code` _i_ ~s~ |t| www.evil.example")
    assert not RENDERED.search(escaped)
    assert "\n" not in escaped
    for raw in ("[", "]", "(", ")", "*", "_", "`", "<", ">", "#", "!", "~", "|"):
        assert re.search(rf"(?<!\\){re.escape(raw)}", escaped) is None, raw
    assert "www." not in escaped  # bare URLs are broken too
    assert md_outside("Harbourside Trading (NZ)") == r"Harbourside Trading \(NZ\)"
    assert len(md_outside("x" * 5000)) <= 200


async def test_an_organisation_named_like_a_link_is_quoted_as_text(bot: BotHarness) -> None:
    bot.sandboxes.xero.org(NZ_TENANT_ID).name = PHISH
    chat = bot.personal(ALICE)
    await connect_in(bot, chat, name="First")
    # A second setup here offered only that organisation: the bot names it in its refusal.
    run = await start_setup(chat)
    mark = bot.connector.mark()
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    await run.say(page.code)
    said = await bot.connector.wait_for_text("already has a connection here", since=mark)
    assert r"\[Pay your invoice here\]" in said.text  # quoted, literally
    for text in bot.connector.texts(mark):
        assert not RENDERED.search(text), text


async def test_the_settings_name_check_tells_nothing_about_another_chats_connection(bot: BotHarness) -> None:
    secret = "Project Kingfisher Acquisition"
    await connect_in(bot, bot.channel(ALICE, team="board"), name=secret)
    chat = bot.personal(BOB)
    mine = await connect_in(bot, chat, user=BOB, name="Bob's books")
    assert (await bot.store.list_connections())[0].dataverse_env_id == mine.dataverse_env_id

    mark = bot.connector.mark()
    await chat.say("settings", user=BOB)
    form = await bot.connector.wait_for_card("Settings: Bob", since=mark)
    mark = bot.connector.mark()
    inputs = {"connection_name": secret.upper(), "plan": "premium", "timezone": "Europe/London",
              "notify_mode": "every_run"}
    await chat.click(form, "Save", inputs, user=BOB)
    again = await bot.connector.wait_for(
        lambda e: e.activity_id == form.activity_id and e.kind == "update", since=mark
    )
    assert "already has a connection with that name" in again.card_text  # refused
    shown = "\n".join([again.card_text, *bot.connector.texts(mark)])
    assert secret not in shown  # not the other connection's own spelling
    assert "board" not in shown.lower()
    stored = await bot.store.get_connection(mine.id)
    assert stored is not None
    assert stored.name == "Bob's books"
