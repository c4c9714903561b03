"""The Adaptive Cards 1.5 schema validator the card tests use, and proof that it rejects broken cards."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "specs" / "adaptivecards" / "1.5.0" / "adaptive-card.json"

Json = dict[str, Any]


# --- the validator ---------------------------------------------------------------------------


def _official_schema() -> Json:
    schema: Json = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema


def _teams_schema() -> Json:
    """The official schema plus one documented addition: Input.ChoiceSet style "filtered".

    Teams renders `"style": "filtered"` (static typeahead, Adaptive Cards 1.5 in Teams:
    learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/dynamic-search), but the
    published 1.5 JSON schema predates it. Nothing else is changed.
    """
    schema = _official_schema()
    schema["definitions"]["ChoiceInputStyle"]["anyOf"][0]["enum"].append("filtered")
    return schema


@functools.cache
def card_validator() -> jsonschema.Draft6Validator:
    """Draft 6, as the schema declares; checked against the metaschema first."""
    schema = _teams_schema()
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


@pytest.fixture
def validator() -> jsonschema.Draft6Validator:
    return card_validator()


def _card(*body: Json, actions: list[Json] | None = None) -> Json:
    card: Json = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": list(body),
    }
    if actions is not None:
        card["actions"] = actions
    return card


BROKEN_CARDS = {
    "text block without text": _card({"type": "TextBlock"}),
    "unknown element": _card({"type": "Marquee", "text": "hi"}),
    "unknown property": _card({"type": "TextBlock", "text": "hi", "blink": True}),
    "input without id": _card({"type": "Input.Text", "label": "x"}),
    "bad colour": _card({"type": "TextBlock", "text": "hi", "color": "Purple"}),
    "fact without value": _card({"type": "FactSet", "facts": [{"title": "a"}]}),
    "choice without value": _card({"type": "Input.ChoiceSet", "id": "c", "choices": [{"title": "a"}]}),
    "open url without url": _card(actions=[{"type": "Action.OpenUrl", "title": "x"}]),
    "unknown action": _card(actions=[{"type": "Action.Teleport", "title": "x"}]),
    "not a card": {"type": "HeroCard", "version": "1.5"},
    "body not a list": {"type": "AdaptiveCard", "version": "1.5", "body": {"type": "TextBlock", "text": "x"}},
    "bogus choice style": _card({"type": "Input.ChoiceSet", "id": "c", "style": "bogus", "choices": []}),
}


def test_validator_accepts_a_good_card(validator: jsonschema.Draft6Validator) -> None:
    good = _card(
        {"type": "TextBlock", "text": "hi", "wrap": True},
        {
            "type": "Input.ChoiceSet",
            "id": "c",
            "style": "filtered",
            "choices": [{"title": "a", "value": "a"}],
        },
        actions=[{"type": "Action.Submit", "title": "Go", "data": {"verb": "run_now"}}],
    )
    validator.validate(good)


@pytest.mark.parametrize("name", list(BROKEN_CARDS))
def test_validator_rejects_broken_cards(validator: jsonschema.Draft6Validator, name: str) -> None:
    assert not validator.is_valid(BROKEN_CARDS[name])


def test_only_the_filtered_style_was_added() -> None:
    official = jsonschema.Draft6Validator(_official_schema())
    card = _card({"type": "Input.ChoiceSet", "id": "c", "style": "filtered", "choices": []})
    assert not official.is_valid(card), "the official schema now knows 'filtered': drop the patch"
    card["body"][0]["style"] = "compact"
    assert official.is_valid(card)
    patched, original = _teams_schema(), _official_schema()
    patched["definitions"]["ChoiceInputStyle"]["anyOf"][0]["enum"].remove("filtered")
    assert patched == original


def test_templates_are_valid_and_all_used(validator: jsonschema.Draft6Validator) -> None:
    folder = Path(__file__).resolve().parents[2] / "cards" / "templates"
    names = {p.stem for p in folder.glob("*.json")}
    assert names == {
        "welcome",
        "help",
        "setup",
        "settings",
        "status",
        "progress",
        "run_result",
        "history",
        "disconnect",
        "choose_connection",
        "alert",
        "message",
        "preview",
        "why",
    }
    for path in folder.glob("*.json"):
        validator.validate(json.loads(path.read_text(encoding="utf-8")))
