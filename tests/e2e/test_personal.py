"""In a personal chat with the bot: the same setup, with the code typed as a message and a wrong setting."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, expect

from sandbox.xero.seed import AU_ORG_NAME, AU_TENANT_ID
from tests.e2e.flows import (
    SETTINGS_CARD,
    Choices,
    connect_dynamics,
    connect_xero,
    fill_settings,
    first_run_result,
    save_settings,
)
from tests.e2e.playground import E2E, STEP_TIMEOUT_MS, Conversation
from tests.e2e.sandbox_api import Sandboxes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHOICES = Choices(
    org_name=AU_ORG_NAME,
    env_name="Contoso Production",
    env_unique="contosoprod",
    connection_name="Wattle Street to Contoso",
    plan="Trial",
    timezone_typed="Sydn",
    timezone_title="Sydney",
    code_in="chat",
)


def _error_under_name(conv: Conversation, card: Locator, message: str) -> None:
    """`message` is shown on the card between the name box and the next field (the plan)."""
    error = card.get_by_text(message, exact=True)
    expect(error).to_be_visible(timeout=STEP_TIMEOUT_MS)
    name_box = card.get_by_label("Connection name").first.bounding_box()
    plan = card.get_by_role("radio").first.bounding_box()
    shown = error.bounding_box()
    assert name_box is not None
    assert plan is not None
    assert shown is not None
    assert name_box["y"] + name_box["height"] <= shown["y"] < plan["y"], (
        f"the error {message!r} is not between the name box and the plan: {name_box}, {shown}, {plan}"
    )


def test_personal_setup_with_a_wrong_setting(e2e: E2E) -> None:
    sandboxes = Sandboxes(e2e.product)
    chat = e2e.app.personal_chat()
    chat.send("sync connect")
    chat.shot("personal chat: sync connect")
    connect_xero(chat, CHOICES)
    connect_dynamics(chat, CHOICES)

    # A name of spaces passes the card's own "required" check; the bot refuses it next to the field.
    card = chat.wait_card(SETTINGS_CARD)
    fill_settings(chat, card, CHOICES, name="   ")
    chat.click(card, "Save")
    card = chat.card(SETTINGS_CARD)
    _error_under_name(chat, card, "Give the connection a name.")
    chat.shot("settings card: the bot's error next to the name")

    # An empty name: the card itself says so, next to the field, and sends nothing.
    chat.fill(card, "Connection name", "")
    chat.click(card, "Save")
    _error_under_name(chat, card, "Give the connection a name of up to 100 characters.")
    chat.shot("settings card: the card's own error next to the name")

    save_settings(chat, CHOICES)
    first_run_result(chat, CHOICES)
    sandboxes.assert_synced(CHOICES.env_unique, CHOICES.connection_name, AU_TENANT_ID)
