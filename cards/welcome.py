"""The welcome card (on install) and the help card (the command list, generated from the table)."""

from __future__ import annotations

from bot.commands import help_lines
from cards.base import CardData, clip
from cards.elements import md_escape, runs
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb


class WelcomeCardData(CardData):
    bot_name: str = "Xero Sync"
    # In channels and group chats the bot only hears messages that @mention it.
    needs_mention: bool = False


class HelpCardData(CardData):
    bot_name: str = "Xero Sync"
    needs_mention: bool = False


def _hint(bot_name: str, needs_mention: bool) -> str:
    name = md_escape(clip(bot_name, 40))
    if needs_mention:
        return f"Here, mention me first: **@{name} status**. Type **help** any time to see the commands."
    return "Type **help** any time to see the commands."


def render_welcome_card(data: WelcomeCardData) -> Json:
    card = load_template("welcome")
    slot(card, "hint")["text"] = _hint(data.bot_name, data.needs_mention)
    slot(card, "start")["data"] = {"verb": CardVerb.SETUP_START.value}
    return finish(card)


def render_help_card(data: HelpCardData) -> Json:
    card = load_template("help")
    items: list[Json] = []
    for line in help_lines():
        usage, _, description = line.partition(": ")
        items.append(runs((usage, {"weight": "Bolder"}), (f": {description}" if description else "", {})))
    slot(card, "commands")["items"] = items
    name = md_escape(clip(data.bot_name, 40))
    hint = (
        "With or without a slash or the word sync: **status**, **/sync status** and **sync status** all work."
    )
    if data.needs_mention:
        hint += f" Here, mention me first: **@{name} status**."
    hint += " Leave out the name when there is only one connection in this chat."
    slot(card, "hint")["text"] = hint
    slot(card, "start")["data"] = {"verb": CardVerb.SETUP_START.value}
    return finish(card)
