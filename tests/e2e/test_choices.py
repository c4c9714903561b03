"""Choosing what syncs and previewing the next run, in the Playground (issue 17's end-to-end part).

After a setup in a personal chat: the settings card's "Tax rates" switch turned off, a run that says it
skipped them, and `sync preview` answering with what the next run would do, without writing anything.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sandbox.xero.seed import AU_ORG_NAME
from tests.e2e.flows import (
    RUN_DONE,
    Choices,
    connect_dynamics,
    connect_xero,
    first_run_result,
    save_settings,
)
from tests.e2e.playground import E2E, RUN_TIMEOUT_MS, STEP_TIMEOUT_MS
from tests.e2e.sandbox_api import Sandboxes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CHOICES = Choices(
    org_name=AU_ORG_NAME,
    env_name="Contoso Production",
    env_unique="contosoprod",
    connection_name="Wattle Street choices",
    plan="Premium",
    timezone_typed="Sydn",
    timezone_title="Sydney",
    code_in="card",
)
SKIPPED = "Tax rates: skipped (switched off; rows in Dynamics left as they are)"


def test_switch_tax_rates_off_then_preview(e2e: E2E) -> None:
    sandboxes = Sandboxes(e2e.product)
    chat = e2e.app.personal_chat()
    chat.send("sync connect")
    connect_xero(chat, CHOICES)
    connect_dynamics(chat, CHOICES)
    save_settings(chat, CHOICES)
    first_run_result(chat, CHOICES)
    tax_rows_before = len(sandboxes.rows(CHOICES.env_unique, "xdc_taxtypes"))

    # The settings card of the connection: switch tax rates off, save.
    chat.send("sync settings")
    card = chat.wait_card("Default connection for")  # only on the settings card of an existing connection
    chat.touch(card)
    tax = card.get_by_role("checkbox", name=re.compile("^Tax rates"))
    expect(tax).to_be_checked(timeout=STEP_TIMEOUT_MS)
    tax.uncheck()
    chat.shot("settings: tax rates switched off")
    chat.click(card, "Save")
    chat.wait_text(re.compile("Settings saved|saved", re.IGNORECASE))

    # The next run skips them and says so; the rows already in Dynamics stay as they are.
    chat.send("sync now")
    result = chat.wait_card(re.compile(re.escape(SKIPPED)), timeout=RUN_TIMEOUT_MS)
    expect(result).to_contain_text(RUN_DONE)
    chat.shot("run: tax rates skipped")
    assert len(sandboxes.rows(CHOICES.env_unique, "xdc_taxtypes")) == tax_rows_before

    # A preview reads Xero now and writes nothing.
    chat.send("sync preview")
    preview = chat.wait_card("What the next run would do")
    expect(preview).to_contain_text("nothing was written to Dynamics 365")
    chat.shot("preview card")
