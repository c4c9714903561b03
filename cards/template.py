"""Card templates: JSON files under `cards/templates/`, filled in Python, never by string replace.

A template is a complete Adaptive Card whose fillable elements carry an id starting with `slot.`.
`load_template` returns a fresh deep copy; `slot` finds an element by that id; `finish` removes the
slot ids and drops what stayed empty (a container with no items, an action set with no actions, a
text block with no text), so a render function only fills what its data has.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

Json = dict[str, Any]

SLOT_PREFIX = "slot."
SCHEMA_URL = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"

# Keys under which elements hold child elements or actions.
_CHILD_KEYS = ("body", "items", "columns", "actions", "inlines", "rows", "cells", "card")


class TemplateError(Exception):
    """A template is missing, malformed or lacks a slot: a programming error, caught by the tests."""


@cache
def _read(name: str) -> Json:
    path = resources.files("cards") / "templates" / f"{name}.json"
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TemplateError(f"cannot read card template {name!r}: {exc}") from exc
    if not isinstance(loaded, dict) or loaded.get("type") != "AdaptiveCard":
        raise TemplateError(f"card template {name!r} is not an AdaptiveCard")
    if loaded.get("version") != CARD_VERSION or loaded.get("$schema") != SCHEMA_URL:
        raise TemplateError(f"card template {name!r} must declare $schema and version {CARD_VERSION}")
    return loaded


def load_template(name: str) -> Json:
    """A fresh copy of the named template (callers mutate it)."""
    return copy.deepcopy(_read(name))


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for key in _CHILD_KEYS:
            child = node.get(key)
            if isinstance(child, list):
                for item in child:
                    yield from _walk(item)
            elif isinstance(child, dict):
                yield from _walk(child)
        for fallback_key in ("fallback", "selectAction", "inlineAction"):
            child = node.get(fallback_key)
            if isinstance(child, dict):
                yield from _walk(child)


def slot(card: Json, name: str) -> Json:
    """The element whose id is `slot.<name>`. Raises TemplateError if the template lacks it."""
    wanted = SLOT_PREFIX + name
    for node in _walk(card):
        if node.get("id") == wanted:
            result: Json = node
            return result
    raise TemplateError(f"template has no slot {name!r}")


def _is_empty(element: Json) -> bool:
    kind = element.get("type")
    if kind == "TextBlock":
        return not element.get("text")
    if kind == "RichTextBlock":
        return not element.get("inlines")
    if kind in ("Container", "Column"):
        return not element.get("items")
    if kind == "ColumnSet":
        return not element.get("columns")
    if kind == "ActionSet":
        return not element.get("actions")
    if kind == "FactSet":
        return not element.get("facts")
    if kind == "Table":
        return not element.get("rows")
    return False


def _clean(node: Json) -> None:
    element_id = node.get("id")
    if isinstance(element_id, str) and element_id.startswith(SLOT_PREFIX):
        del node["id"]
    for key in ("body", "items", "columns"):
        children = node.get(key)
        if isinstance(children, list):
            for child in children:
                if isinstance(child, dict):
                    _clean(child)
            node[key] = [c for c in children if not (isinstance(c, dict) and _is_empty(c))]
    for key in ("actions", "inlines", "rows", "cells"):
        children = node.get(key)
        if isinstance(children, list):
            for child in children:
                if isinstance(child, dict):
                    _clean(child)
    card = node.get("card")
    if isinstance(card, dict):
        _clean(card)


def finish(card: Json) -> Json:
    """Remove slot ids and empty elements (children first, so emptying a child can empty its parent)."""
    _clean(card)
    if not card.get("actions"):
        card.pop("actions", None)
    return card
