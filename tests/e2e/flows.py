"""The setup as a person goes through it in the Playground: the card, two sign-in popups, the settings.

Only what the person sees is used: button titles, labels, the code on the sign-in page. Nothing is
read from the bot's store or sent to the bot behind the page's back, so a card whose button or verb
is broken stops the flow here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from playwright.sync_api import Locator, Page, expect

from sandbox.entra.directory import ALICE
from sandbox.xero.seed import DEMO_EMAIL, DEMO_PASSWORD
from tests.e2e.playground import RUN_TIMEOUT_MS, STEP_TIMEOUT_MS, Conversation, PersonalChat

SETUP_CARD = "Set up a connection"
SETTINGS_CARD = "Connection settings"
CODE_LABEL = "Verification code"
RUN_DONE = "✅ Sync done"


@dataclass(frozen=True)
class Choices:
    """What the person picks during the setup."""

    org_name: str  # the Xero organisation ticked on Xero's consent page
    env_name: str  # the Dynamics 365 environment's friendly name
    env_unique: str  # the same environment's unique name (the Dataverse sandbox's key)
    connection_name: str
    plan: str  # the start of the plan's title: "Trial", "Standard", "Premium"
    timezone_typed: str  # what is typed into the timezone box
    timezone_title: str  # the choice picked from the list
    code_in: str = "card"  # where the verification code is typed: "card" or "chat"


def _step_done(card: Locator, step: str, detail: str) -> None:
    """The checklist shows ✅ for `step`, with `detail` (the organisation's or environment's name)."""
    expect(card).to_contain_text(
        re.compile(r"✅\s*" + re.escape(step) + r"[^⏳✅⚠]{0,120}" + re.escape(detail)),
        timeout=STEP_TIMEOUT_MS,
    )


def _callback_code(window: Page, conv: Conversation, provider: str) -> str | None:
    """The one-time code our callback page shows, or None when the page says no code is needed."""
    code = window.locator("#code")
    signed_in = window.get_by_role("heading", name=re.compile(r"^Signed in to"))
    expect(code.or_(signed_in)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    conv.steps.shot(window, f"{provider} sign-in done: the page with the code")
    return code.inner_text().strip() if code.count() else None


def _confirm_code(conv: Conversation, code: str, how: str) -> None:
    """Prove to the bot that the browser sign-in was this Teams user's: type the page's code back."""
    card = conv.wait_card(CODE_LABEL)
    if how == "chat":
        assert isinstance(conv, PersonalChat), "typing the code as a message is done in a personal chat"
        conv.send(code)
        conv.shot("the code typed in the chat")
        return
    conv.fill(card, CODE_LABEL, code)
    conv.shot("the code typed on the card")
    conv.click(card, "Verify")


def connect_xero(conv: Conversation, choices: Choices) -> Locator:
    card = conv.wait_card(SETUP_CARD)
    expect(card.get_by_role("link", name="Connect to Xero")).to_be_visible()
    conv.shot("setup card: connect to Xero")
    with conv.popup(card, "Connect to Xero") as window:
        window.get_by_label("Email address").fill(DEMO_EMAIL)
        window.get_by_label("Password").fill(DEMO_PASSWORD)
        conv.steps.shot(window, "Xero sandbox: log in")
        window.get_by_role("button", name="Log in").click()
        allow = window.get_by_role("button", name="Allow access")
        allow.wait_for(timeout=STEP_TIMEOUT_MS)
        # Tick exactly one organisation, as a person connecting one company would.
        for box in window.get_by_role("checkbox").all():
            box.set_checked(False)
        window.get_by_role("checkbox", name=choices.org_name, exact=True).check()
        conv.steps.shot(window, "Xero sandbox: tick an organisation, allow access")
        allow.click()
        code = _callback_code(window, conv, "Xero")
    if code is not None:
        _confirm_code(conv, code, choices.code_in)
    card = conv.card(SETUP_CARD)
    _step_done(card, "Connect to Xero", choices.org_name)
    conv.shot("Xero connected")
    return card


def connect_dynamics(conv: Conversation, choices: Choices, *, solution_installed: bool = True) -> Locator:
    card = conv.card(SETUP_CARD)
    link = card.get_by_role("link", name="Connect to Dynamics 365")
    expect(link).to_be_visible(timeout=STEP_TIMEOUT_MS)
    with conv.popup(card, "Connect to Dynamics 365") as window:
        # Entra's sign-in page, opened as a person's browser would: over http on the loopback, with
        # no certificate to distrust (a certificate error would stop here, on Chromium's error page).
        expect(window).to_have_url(re.compile(r"^http://(127\.0\.0\.1|localhost):\d+/[^/]+/oauth2/v2\.0/authorize\?"))
        window.get_by_label("Username").fill(ALICE.upn)
        window.get_by_label("Password").fill(ALICE.password)
        conv.steps.shot(window, "Entra sandbox: sign in")
        window.get_by_role("button", name="Sign in").click()
        accept = window.get_by_role("button", name="Accept")
        accept.wait_for(timeout=STEP_TIMEOUT_MS)
        conv.steps.shot(window, "Entra sandbox: permissions requested")
        accept.click()
        code = _callback_code(window, conv, "Dynamics 365")
    if code is not None:
        _confirm_code(conv, code, choices.code_in)
    card = conv.wait_card("Which Dynamics 365 environment")
    conv.choose_radio(card, re.compile(re.escape(choices.env_name)))
    conv.shot("pick the Dynamics 365 environment")
    conv.click(card, "Use this environment")
    card = conv.card(SETUP_CARD)
    if not solution_installed:
        return card  # the solution step comes first (see install_solution_for_me)
    _step_done(card, "Connect to Dynamics 365", choices.env_name)
    conv.shot("Dynamics 365 connected")
    return card


def install_solution_for_me(conv: Conversation, choices: Choices) -> Locator:
    """The environment lacks our solution: press "Install it for me", watch the progress, carry on."""
    card = conv.card(SETUP_CARD)
    expect(card).to_contain_text("isn't installed in " + choices.env_name, timeout=STEP_TIMEOUT_MS)
    expect(card.get_by_role("button", name="Install it for me")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    conv.shot("solution step: install it for me")
    conv.click(card, "Install it for me")
    expect(conv.card(SETUP_CARD)).to_contain_text(re.compile(r"Installing"), timeout=STEP_TIMEOUT_MS)
    conv.shot("solution step: installing, with progress")
    card = conv.card(SETUP_CARD)
    _step_done(card, "Connect to Dynamics 365", choices.env_name)
    conv.shot("solution installed, Dynamics 365 connected")
    return card


def fill_settings(conv: Conversation, card: Locator, choices: Choices, *, name: str | None = None) -> None:
    conv.fill(card, "Connection name", choices.connection_name if name is None else name)
    conv.choose_radio(card, re.compile("^" + re.escape(choices.plan)))
    conv.pick_filtered(card, "Timezone", choices.timezone_typed, choices.timezone_title)


def save_settings(conv: Conversation, choices: Choices) -> None:
    card = conv.wait_card(SETTINGS_CARD)
    fill_settings(conv, card, choices)
    conv.shot("settings card filled in")
    conv.click(card, "Save")
    conv.wait_text(re.compile(r"Connection .+ created; the first sync is running now"))
    expect(conv.card("Connection ready")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    conv.shot("connection created")


def first_run_result(conv: Conversation, choices: Choices) -> Locator:
    """The result card of the first run, which the bot posts by itself when the run ends."""
    result = conv.wait_card(RUN_DONE, timeout=RUN_TIMEOUT_MS)
    expect(result).to_contain_text(choices.connection_name)
    conv.shot("first run: result card arrived by itself")
    return result
