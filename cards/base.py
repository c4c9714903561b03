"""What every card's data model shares."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CardData(BaseModel):
    """The data one card shows: built by the bot from its records, read by one render function."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Choice(CardData):
    """One option of a choice input: `value` goes back in the submit, `title` is what people read."""

    value: str
    title: str


def clip(text: str, limit: int, *, keep_lines: bool = False) -> str:
    """Shorten text from a provider or a user so one long value cannot blow the card's size.

    Runs of whitespace become one space (or, with `keep_lines`, lines are kept but trimmed)."""
    if keep_lines:
        text = "\n".join(" ".join(line.split()) for line in text.strip().splitlines())
    else:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
