"""Every card in several variants (errors shown, several orgs, long failure lists).

The render, content and size tests import `CASES` and the walkers from this module; the cases live in
`card_cases_setup.py` and `card_cases_ops.py`, what they are built from in `card_fixtures.py`.
"""
from __future__ import annotations

from collections.abc import Callable

from tests.unit.card_cases_ops import OPS_CASES
from tests.unit.card_cases_setup import SETUP_CASES
from tests.unit.card_fixtures import (
    COUNTS,
    ENVS,
    EVIL,
    ORGS,
    SETUP,
    T0,
    XERO_DONE,
    Json,
    card_actions,
    card_inputs,
    make_connection,
    make_failures,
    make_run,
    markdown_texts,
    plain_texts,
    walk_card,
)

__all__ = [
    "CASES",
    "COUNTS",
    "ENVS",
    "EVIL",
    "ORGS",
    "SETUP",
    "T0",
    "XERO_DONE",
    "Json",
    "card_actions",
    "card_inputs",
    "make_connection",
    "make_failures",
    "make_run",
    "markdown_texts",
    "plain_texts",
    "walk_card",
]

# In the order they were written: the setup's cards, then a running connection's.
CASES: dict[str, Callable[[], Json]] = {**SETUP_CASES, **OPS_CASES}


def test_every_card_has_cases() -> None:
    kinds = {name.split(":")[0] for name in CASES}
    assert kinds >= {
        "welcome",
        "help",
        "setup",
        "settings",
        "status",
        "progress",
        "run result",
        "history",
        "disconnect",
        "choose",
        "alert",
        "message",
    }
