"""Every card variant: valid Adaptive Card 1.5, small, clean, and every button parses back."""

from __future__ import annotations

import json

import pytest

from cards import (
    CardVerb,
    parse_submit,
)
from cards.submits import is_teams_signin
from tests.unit.test_cards_cases import CASES, Json, card_actions, card_inputs, markdown_texts, walk_card
from tests.unit.test_cards_schema import card_validator

MAX_CARD_BYTES = 28_000


@pytest.fixture(params=list(CASES), scope="module")
def rendered(request: pytest.FixtureRequest) -> tuple[str, Json]:
    return request.param, CASES[request.param]()


def test_card_matches_the_schema(rendered: tuple[str, Json]) -> None:
    _, card = rendered
    card_validator().validate(card)
    assert card["type"] == "AdaptiveCard"
    assert card["version"] == "1.5"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"


def test_card_is_small_and_clean(rendered: tuple[str, Json]) -> None:
    name, card = rendered
    size = len(json.dumps(card).encode("utf-8"))
    assert size < MAX_CARD_BYTES, f"{name}: {size} bytes"
    assert not [n for n in walk_card(card) if str(n.get("id", "")).startswith("slot.")]
    ids = [i["id"] for i in card_inputs(card)]
    assert len(ids) == len(set(ids))
    assert card.get("actions", None) != []


def test_every_action_is_handled_or_opens_https(rendered: tuple[str, Json]) -> None:
    name, card = rendered
    for action in card_actions(card):
        assert action["type"] in ("Action.Submit", "Action.OpenUrl")
        if action["type"] == "Action.OpenUrl":
            assert action["url"].startswith("https://")
            continue
        data = action["data"]
        if is_teams_signin(data):
            # The one documented exception: Teams' sign-in action carries no verb because Teams
            # never sends it to the bot (it opens the sign-in popup). Only the setup's sign-in
            # buttons use it, and only to open an https page.
            assert name.startswith("setup:"), name
            assert action["title"] in ("Connect to Xero", "Connect to Dynamics 365")
            assert data["msteams"]["value"].startswith("https://")
            continue
        assert isinstance(data, dict)
        assert data["verb"] in {v.value for v in CardVerb}
        assert set(data) - {"verb"} <= {"setup_id", "connection_id", "command", "command_text"}


def _sample_value(element: Json) -> str:
    if element["type"] == "Input.ChoiceSet":
        return str(element.get("value") or element["choices"][0]["value"])
    if element["type"] == "Input.Toggle":
        return str(element.get("value") or element["valueOff"])
    samples = {"verification_code": "AB12-CD34", "connection_name": "Acme Ltd"}
    return samples[element["id"]]


def test_every_submit_parses_back(rendered: tuple[str, Json]) -> None:
    """What Teams would send for each button (hidden data plus the card's inputs) validates."""
    _, card = rendered
    inputs = {i["id"]: _sample_value(i) for i in card_inputs(card)}
    for action in card_actions(card):
        if action["type"] != "Action.Submit" or is_teams_signin(action["data"]):
            continue
        value = dict(action["data"])
        if action.get("associatedInputs") != "none":
            value.update(inputs)
        parsed = parse_submit(value)
        assert parsed.verb == action["data"]["verb"]


def test_untrusted_text_never_reaches_markdown(rendered: tuple[str, Json]) -> None:
    _, card = rendered
    for value in markdown_texts(card):
        assert "[Pay here](" not in value
        assert "**urgent**" not in value
