"""Cards that explain without changing anything: `sync preview` and `sync why`.

The data models are plain (counts, names, times, reasons): the Teams layer fills them from
`bot.sync.preview.Preview` and `bot.sync.why.Explanation`. Names come from Xero and Dynamics, so they are
shown as plain text (never markdown).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from cards.base import CardData, clip
from cards.elements import facts, md_escape, plain, plain_lines, submit, text
from cards.formatting import entity_label, format_both, format_count, skipped_in_words
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb

MAX_CHOICES = 6  # Teams shows at most six buttons in a row of actions
SINGULAR: dict[str, str] = {
    "accounts": "Account",
    "tax_rates": "Tax rate",
    "branding_themes": "Branding theme",
    "tracking_categories": "Tracking category",
    "tracking_options": "Tracking option",
}

_KIND_WORDS = (("created", "to create"), ("updated", "to update"), ("deactivated", "to deactivate"))


class EntityPreviewData(CardData):
    entity: str
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    examples: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # kind -> up to ten names


class PreviewCardData(CardData):
    connection_id: str
    connection_name: str
    read_at: datetime
    timezone: str = "UTC"
    full: bool = True
    xero_calls: int = 0
    entities: tuple[EntityPreviewData, ...] = ()
    skipped: tuple[str, ...] = ()


def _summary(entity: EntityPreviewData) -> str:
    parts = [
        f"{format_count(getattr(entity, kind))} {words}"
        for kind, words in _KIND_WORDS
        if getattr(entity, kind)
    ]
    if entity.unchanged:
        parts.append(f"{format_count(entity.unchanged)} unchanged")
    return f"{entity_label(entity.entity)}: " + (", ".join(parts) or "nothing to do")


def _entity_items(entity: EntityPreviewData) -> list[Json]:
    items: list[Json] = [text(_summary(entity), weight="Bolder", spacing="Small")]
    for kind, words in _KIND_WORDS:
        names = entity.examples.get(kind, ())
        if not names:
            continue
        more = getattr(entity, kind) - len(names)
        line = f"{words.removeprefix('to ').capitalize()}: " + ", ".join(clip(n, 80) for n in names)
        if more > 0:
            line += f" and {format_count(more)} more"
        items.append({**plain(line, size="Small"), "spacing": "None"})
    return items


def render_preview_card(data: PreviewCardData) -> Json:
    card = load_template("preview")
    slot(card, "name")["inlines"] = [
        {"type": "TextRun", "text": clip(data.connection_name, 100), "isSubtle": True}
    ]
    slot(card, "facts")["facts"] = facts(
        [
            ("Read from Xero", format_both(data.read_at, data.timezone)),
            (
                "Accounts",
                "all read (the next run is a full pass)" if data.full else "those changed since the last run",
            ),
            ("Xero API calls used", format_count(data.xero_calls)),
        ]
    )["facts"]
    items: list[Json] = []
    for entity in data.entities:
        items += _entity_items(entity)
    slot(card, "entities")["items"] = items
    slot(card, "skipped")["items"] = [
        plain(line, size="Small", isSubtle=True) for line in skipped_in_words(data.skipped)
    ]
    cid = data.connection_id
    card["actions"] = [
        submit("Run now", CardVerb.RUN_NOW, connection_id=cid),
        submit("Status", CardVerb.SHOW_STATUS, connection_id=cid),
    ]
    return finish(card)


class WhyChoice(CardData):
    title: str  # "Account 200 Sales (Acme)"
    command_text: str  # what pressing it runs: "why id:<connection>:<entity>:<key>"


class WhyCardData(CardData):
    """One record explained, or (with `choices`) the question which record was meant."""

    query: str
    connection_id: str = ""
    connection_name: str = ""
    entity: str = ""
    label: str = ""
    facts: tuple[tuple[str, str], ...] = ()
    sentences: tuple[str, ...] = ()
    failure: str = ""  # the reason, in plain words
    advice: str = ""  # what to do about it
    choices: tuple[WhyChoice, ...] = ()
    more_choices: int = 0
    not_found: bool = False


def render_why_card(data: WhyCardData) -> Json:
    card = load_template("why")
    query = clip(data.query, 80)
    if data.not_found:
        slot(card, "title")["text"] = "Nothing found"
        slot(card, "explanation")["items"] = plain_lines(
            f"No account, tax rate, branding theme or tracking option is called “{query}” in what this "
            "connection syncs.\nTry an account code (for example 200), a tax type (for example OUTPUT2) "
            "or the exact name."
        )
        return finish(card)
    if data.choices:
        slot(card, "title")["text"] = "Which one?"
        lines = f"Several records are called “{query}”. Choose one:"
        if data.more_choices:
            lines += f"\n…and {format_count(data.more_choices)} more: type a code or a more exact name."
        slot(card, "explanation")["items"] = plain_lines(lines)
        slot(card, "choices")["actions"] = [
            submit(clip(c.title, 60), CardVerb.RETRY_COMMAND, command_text=c.command_text)
            for c in data.choices[:MAX_CHOICES]
        ]
        return finish(card)
    what = SINGULAR.get(data.entity, "Record")
    slot(card, "title")["text"] = f"Why: {what} {md_escape(clip(data.label, 100))}"
    name = clip(data.connection_name, 100)
    slot(card, "name")["inlines"] = [{"type": "TextRun", "text": name, "isSubtle": True}]
    slot(card, "facts")["facts"] = facts([(k, clip(v, 200)) for k, v in data.facts])["facts"]
    slot(card, "explanation")["items"] = plain_lines("\n".join(data.sentences))
    if data.failure:
        slot(card, "failure")["items"] = [
            text("Its last write failed", weight="Bolder", color="Attention"),
            plain(clip(data.failure, 400)),
            plain(clip(data.advice, 400), isSubtle=True),
        ]
    cid = data.connection_id
    card["actions"] = [
        submit("Run now", CardVerb.RUN_NOW, connection_id=cid),
        submit("History", CardVerb.SHOW_HISTORY, connection_id=cid),
    ]
    return finish(card)
