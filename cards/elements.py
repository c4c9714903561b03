"""Small builders for the Adaptive Card elements the render functions add in code.

Text that comes from users or providers (connection names, organisation names, error reasons) goes
into a `TextRun`, which clients never read as markdown, or through `md_escape` where only markdown
text is allowed (fact values): a Xero organisation called "[Pay here](https://...)" stays text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cards.verbs import CardVerb

Json = dict[str, Any]

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>~#|])")


def md_escape(text: str) -> str:
    """Escape the characters that start markdown emphasis, links, code or html in a TextBlock."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def text(value: str, **props: Any) -> Json:
    """A wrapping TextBlock for text we wrote (markdown allowed)."""
    return {"type": "TextBlock", "text": value, "wrap": True, **props}


def plain(value: str, **run_props: Any) -> Json:
    """A RichTextBlock with one TextRun: shown exactly as given, never as markdown."""
    return {"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": value, **run_props}]}


def plain_lines(value: str, **run_props: Any) -> list[Json]:
    """One plain RichTextBlock per line: clients differ on whether a TextRun keeps line breaks."""
    lines = [line for line in value.splitlines() if line.strip()]
    return [
        {**plain(line, **run_props), "spacing": "None"} if i else plain(line, **run_props)
        for i, line in enumerate(lines)
    ]


def runs(*parts: tuple[str, dict[str, Any]]) -> Json:
    """A RichTextBlock of several runs, each (text, props), for mixing bold labels with plain values."""
    return {
        "type": "RichTextBlock",
        "inlines": [{"type": "TextRun", "text": value, **props} for value, props in parts if value],
    }


def error_text(message: str) -> Json:
    """A red line right under the field it concerns."""
    return {
        "type": "RichTextBlock",
        "spacing": "None",
        "inlines": [{"type": "TextRun", "text": message, "color": "Attention", "size": "Small"}],
    }


def facts(pairs: Iterable[tuple[str, str]]) -> Json:
    return {
        "type": "FactSet",
        "facts": [{"title": title, "value": md_escape(value)} for title, value in pairs],
    }


def submit(
    title: str,
    verb: CardVerb,
    *,
    with_inputs: bool = False,
    hidden: Mapping[str, str] | None = None,
    **data: str,
) -> Json:
    """An Action.Submit the bot handles: `data.verb` names it, the other keys are hidden fields.

    Without `with_inputs` the card's inputs are neither checked nor sent: "Cancel" must work while a
    required field is still empty.
    """
    fields = {**(hidden or {}), **data}
    action: Json = {"type": "Action.Submit", "title": title, "data": {"verb": verb.value, **fields}}
    if not with_inputs:
        action["associatedInputs"] = "none"
    return action


def text_input(
    input_id: str,
    label: str,
    *,
    max_length: int,
    value: str = "",
    placeholder: str = "",
    regex: str = "",
    error_message: str = "",
) -> Json:
    """A required single-line text input with a label and its client-side hints."""
    element: Json = {
        "type": "Input.Text",
        "id": input_id,
        "label": label,
        "isRequired": True,
        "maxLength": max_length,
    }
    if value:
        element["value"] = value
    if placeholder:
        element["placeholder"] = placeholder
    if regex:
        element["regex"] = regex
    if error_message:
        element["errorMessage"] = error_message
    return element


def open_url(title: str, url: str) -> Json:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def action_set(actions: Sequence[Json], **props: Any) -> Json:
    return {"type": "ActionSet", "actions": list(actions), **props}


def choice_set(
    input_id: str,
    label: str,
    choices: Iterable[tuple[str, str]],
    *,
    value: str | None = None,
    style: str = "compact",
    error_message: str = "",
    placeholder: str = "",
) -> Json:
    """A required single-choice input; `choices` are (value, title) pairs."""
    element: Json = {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "isRequired": True,
        "style": style,
        "wrap": True,
        "choices": [{"title": title, "value": val} for val, title in choices],
    }
    if value is not None:
        element["value"] = value
    if error_message:
        element["errorMessage"] = error_message
    if placeholder:
        element["placeholder"] = placeholder
    return element


def table(header: Sequence[str], rows: Iterable[Sequence[str]], widths: Sequence[int] | None = None) -> Json:
    """A Table (1.5) with a header row; cell texts are shown as plain text."""

    def row(cells: Sequence[str], bold: bool = False) -> Json:
        props: dict[str, Any] = {"weight": "Bolder"} if bold else {}
        return {
            "type": "TableRow",
            "cells": [{"type": "TableCell", "items": [plain(cell, **props)]} for cell in cells],
        }

    column_widths = list(widths) if widths else [1] * len(header)
    return {
        "type": "Table",
        "firstRowAsHeader": True,
        "showGridLines": True,
        "columns": [{"type": "TableColumnDefinition", "width": w} for w in column_widths],
        "rows": [row(header, bold=True), *(row(r) for r in rows)],
    }
