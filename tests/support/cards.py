"""Walking an Adaptive Card's JSON, for the tests of every level (unit card cases, scenario chats)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Json = dict[str, Any]


def walk_card(node: Any) -> Iterator[Json]:
    """Every object in the card, depth first, in document order."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_card(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_card(value)


def of_type(card: Any, prefix: str) -> list[Json]:
    """The card's elements whose `type` starts with `prefix` ("Action.", "Input.", "Table")."""
    return [n for n in walk_card(card) if isinstance(n.get("type"), str) and n["type"].startswith(prefix)]
