"""In a group chat: set up a connection with the bot @mentioned, and read the chat in the order it happened."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sandbox.xero.seed import UK_ORG_NAME, UK_TENANT_ID
from tests.e2e.flows import Choices, connect_dynamics, connect_xero, first_run_result, save_settings
from tests.e2e.playground import E2E
from tests.e2e.sandbox_api import Sandboxes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHOICES = Choices(
    org_name=UK_ORG_NAME,
    env_name="Contoso Production",
    env_unique="contosoprod",
    connection_name="Thames Lane to Contoso",
    plan="Standard",
    timezone_typed="Lond",
    timezone_title="London",
    code_in="card",
)
CREATED = re.compile(r"Connection .+ created; the first sync is running now")
# True when `a` comes before `b` in the page, i.e. was shown above it in the chat.
_BEFORE = "(a, b) => Boolean(a.compareDocumentPosition(b) & Node.DOCUMENT_POSITION_FOLLOWING)"


def test_group_chat_setup_reads_in_order(e2e: E2E) -> None:
    sandboxes = Sandboxes(e2e.product)
    chat = e2e.app.group_chat()
    chat.shot("the group chat")

    chat.send("sync connect")
    chat.shot("group chat: @bot sync connect")
    connect_xero(chat, CHOICES)
    connect_dynamics(chat, CHOICES)
    save_settings(chat, CHOICES)
    result = first_run_result(chat, CHOICES)
    sandboxes.assert_synced(CHOICES.env_unique, CHOICES.connection_name, UK_TENANT_ID)

    # The chat reads as it happened: "created, the first sync is running" above the run's result.
    created = chat.text(CREATED)
    expect(created).to_be_visible()
    assert created.evaluate(_BEFORE, result.element_handle()), (
        "the first run's result is shown above the message that the connection was created"
    )

    # A command in the group chat, mentioned as it must be, answers about this chat's connection.
    chat.send("sync status")
    status = chat.wait_card("Sync status")
    expect(status).to_contain_text(CHOICES.connection_name)
    chat.shot("group chat: sync status")
