"""In the General channel of a team: set up a connection, watch the runs, change the plan, disconnect."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from sandbox.xero.seed import NZ_ORG_NAME, NZ_TENANT_ID
from tests.e2e.flows import RUN_DONE, Choices, connect_dynamics, connect_xero, first_run_result, save_settings
from tests.e2e.playground import CARD, E2E, RUN_TIMEOUT_MS
from tests.e2e.sandbox_api import Sandboxes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

CHOICES = Choices(
    org_name=NZ_ORG_NAME,
    env_name="Contoso Production",
    env_unique="contosoprod",
    connection_name="Harbourside to Contoso",
    plan="Standard",
    timezone_typed="Auckl",
    timezone_title="Auckland",
    code_in="card",
)


def test_channel_setup_runs_settings_and_disconnect(e2e: E2E) -> None:
    sandboxes = Sandboxes(e2e.product)
    channel = e2e.app.channel("General")
    channel.shot("the General channel")

    # Setup: the bot answers in our thread and starts the setup in a thread of its own.
    asked = channel.post("sync connect")
    asked.wait_text("I started the setup in a new thread")
    setup = channel.thread_with("Set up a connection")
    connect_xero(setup, CHOICES)
    connect_dynamics(setup, CHOICES)
    save_settings(setup, CHOICES)
    first_run_result(setup, CHOICES)
    sandboxes.assert_synced(CHOICES.env_unique, CHOICES.connection_name, NZ_TENANT_ID)

    # sync status: the last run, in a card.
    status = channel.post("sync status")
    card = status.wait_card("Sync status")
    expect(card).to_contain_text(CHOICES.connection_name)
    expect(card).to_contain_text(re.compile(r"Outcome\W*Succeeded"))
    expect(card).to_contain_text(re.compile(r"Plan\W*Standard"))
    status.shot("sync status: the last run")

    # sync now: a progress card first (Xero made slow enough to see it), then the result.
    sandboxes.xero_latency(0.8)
    now = channel.post("sync now")
    now.wait_card("Sync running")
    now.shot("sync now: in progress")
    sandboxes.xero_latency(0)
    result = now.wait_card(RUN_DONE, timeout=RUN_TIMEOUT_MS)
    expect(result).to_contain_text(CHOICES.connection_name)
    # The progress card became the result card (updated in place), not a second message.
    expect(now.scope.locator(CARD).filter(has_text="Sync running")).to_have_count(0)
    now.shot("sync now: the result")

    # sync settings: change the plan.
    settings = channel.post("sync settings")
    form = settings.wait_card(f"Settings: {CHOICES.connection_name}")
    settings.choose_radio(form, re.compile("^Premium"))
    settings.shot("sync settings: choose Premium")
    settings.click(form, "Save")
    settings.wait_card(f"Settings of {CHOICES.connection_name} saved")
    settings.wait_text("Plan changed from Standard to Premium")
    settings.shot("sync settings: saved")

    # sync disconnect: asks first, then disconnects.
    bye = channel.post("sync disconnect")
    confirm = bye.wait_card("Disconnect?")
    expect(confirm).to_contain_text(CHOICES.connection_name)
    bye.shot("sync disconnect: asks first")
    bye.click(confirm, "Disconnect")
    # The question card becomes the answer, so its buttons cannot be pressed twice.
    done = bye.wait_card(f"{CHOICES.connection_name} is disconnected")
    expect(done.get_by_role("button")).to_have_count(0)
    bye.shot("sync disconnect: done")
