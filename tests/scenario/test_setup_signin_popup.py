"""Which sign-in button the setup card offers, per client, and that each kind completes.

Real Teams posts activities from its Bot Connector at an https service URL on a public host; there the
card's "Connect to ..." buttons are Teams' sign-in action, Teams opens its popup, and the code comes
back as a `signin/verifyState` invoke. A local client (the Agents Playground, and this harness's fake
connector at http://127.0.0.1) gets `Action.OpenUrl` with the same titles and the typed code.

To play real Teams here, a chat's activities carry Teams' service URL, and the bot's connector client
reaches that URL at the fake connector (a hosts-file entry, in effect): everything else is the real bot.
"""

from __future__ import annotations

from typing import Any

import pytest
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth._connector_factory_impl import _ConnectorFactoryImpl

from bot.dialogs.view import has_signin_popup
from bot.storage.base import TokenKind
from bot.sync.tables import REQUIRED_ROLE_PRIVILEGES
from sandbox.entra import CAROL
from sandbox.xero.seed import NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BotHarness, Chat, Outbound, TeamsUser, start_setup

TEAMS_SERVICE_URL = "https://smba.trafficmanager.net/emea/"
PLAYGROUND_SERVICE_URL = "http://localhost:56150/_connector"
SIGNIN_TITLES = ("Connect to Xero", "Connect to Dynamics 365")


class TeamsChat(Chat):
    """A chat whose activities come from real Teams' Bot Connector."""

    def activity(
        self, kind: str, user: TeamsUser | None = None, *, thread: str = "", **fields: Any
    ) -> dict[str, Any]:
        activity = super().activity(kind, user, thread=thread, **fields)
        activity["serviceUrl"] = TEAMS_SERVICE_URL
        return activity


def in_teams(chat: Chat) -> TeamsChat:
    return TeamsChat(
        chat.bot,
        chat.user,
        conversation_id=chat.conversation_id,
        team_id=chat.team_id,
        channel_id=chat.channel_id,
    )


@pytest.fixture
def teams_reaches_the_fake_connector(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Route the bot's calls to Teams' service URL to the fake connector; returns the URLs it asked for."""
    asked: list[str] = []
    create = _ConnectorFactoryImpl.create

    async def routed(
        self: _ConnectorFactoryImpl, service_url: str, audience: str | None = None
    ) -> ConnectorClient:
        asked.append(service_url)
        if service_url.startswith(TEAMS_SERVICE_URL):
            service_url = bot.connector.url
        return await create(self, service_url, audience)

    monkeypatch.setattr(_ConnectorFactoryImpl, "create", routed)
    return asked


def signin_url(card: Outbound, title: str) -> str:
    """The URL of a Teams sign-in button, checking it has exactly the documented shape."""
    action = card.action(title)
    assert action["type"] == "Action.Submit", action
    assert set(action) == {"type", "title", "data"}, action
    assert set(action["data"]) == {"msteams"}, action
    assert action["data"]["msteams"]["type"] == "signin"
    url = action["data"]["msteams"]["value"]
    assert isinstance(url, str)
    return url


def signin_buttons(card: Outbound) -> list[dict[str, Any]]:
    return [a for a in card.actions() if a.get("title") in SIGNIN_TITLES]


# ---- the choice ------------------------------------------------------------------------------------


def _reference(service_url: object, channel_id: str = "msteams") -> dict[str, Any]:
    return {"channelId": channel_id, "serviceUrl": service_url, "conversation": {"id": "a:1"}}


@pytest.mark.parametrize(
    "reference",
    [
        _reference(TEAMS_SERVICE_URL),
        _reference("https://smba.trafficmanager.net/amer/"),
        _reference("https://smba.infra.gcc.teams.microsoft.com/teams"),
        _reference("https://smba.infra.gov.teams.microsoft.us"),
    ],
)
def test_real_teams_gets_the_popup(reference: dict[str, Any]) -> None:
    assert has_signin_popup(reference)


@pytest.mark.parametrize(
    "reference",
    [
        _reference(PLAYGROUND_SERVICE_URL),
        _reference("http://127.0.0.1:56150/_connector"),
        _reference("https://localhost:56150/_connector"),
        _reference("https://127.0.0.1/_connector"),
        _reference("https://127.0.0.2/_connector"),
        _reference("https://[::1]:8443/_connector"),
        _reference("https://playground.localhost/_connector"),
        _reference("http://smba.trafficmanager.net/emea/"),
        _reference(TEAMS_SERVICE_URL, channel_id="emulator"),
        _reference(TEAMS_SERVICE_URL, channel_id="webchat"),
        _reference(""),
        _reference(None),
        _reference("not a url"),
        {},
    ],
)
def test_local_or_unknown_clients_get_open_url(reference: dict[str, Any]) -> None:
    assert not has_signin_popup(reference)


# ---- the whole setup in real Teams ------------------------------------------------------------------


@pytest.mark.usefixtures("teams_reaches_the_fake_connector")
async def test_in_teams_the_buttons_open_the_popup_and_verify_state_completes(bot: BotHarness) -> None:
    chat = in_teams(bot.personal(ALICE))
    run = await start_setup(chat)
    card = await run.card_with_action("Connect to Xero")
    url = signin_url(card, "Connect to Xero")
    assert url.startswith(f"{bot.url}/oauth/xero/start?link=")
    assert not [a for a in card.actions() if a["type"] == "Action.OpenUrl"]

    # Teams opens the popup at the URL; our callback page hands the code to Teams (notifySuccess).
    page = await run.browser.xero(url, tenants=[NZ_TENANT_ID])
    assert "microsoftTeams.authentication.notifySuccess" in page.text
    assert page.code
    # The card keeps the typed code as a fallback in Teams too.
    waiting = await run.card_where(lambda e: "verification_code" in e.inputs())
    assert signin_buttons(waiting)[0]["type"] == "Action.Submit"

    assert await chat.verify_state(page.code, card=run.card()) == 200
    card = await run.card_with("Connected to Xero: Harbourside Trading (NZ)")
    assert await bot.store.all_token_blobs() != []

    # Dynamics: the same kind of button. Alice's own Entra account needs no code.
    card = await run.card_with_action("Connect to Dynamics 365")
    url = signin_url(card, "Connect to Dynamics 365")
    assert url.startswith(f"{bot.url}/oauth/dynamics/start?link=")
    await run.browser.entra(url, upn="alice@contoso.example", password="Alice-Sandbox-1!")

    # An environment without our solution: "Choose another environment" goes back to the choice.
    card = await run.card_with_action("Use this environment")
    choices = {c["title"]: c["value"] for c in card.inputs()["environment_id"]["choices"]}
    assert len(choices) > 1
    await run.click("Use this environment", {"environment_id": choices["Contoso Test"]})
    card = await run.card_with("Our solution isn't installed in Contoso Test yet")
    assert card.has_action("Check again")
    assert card.action("Choose another environment")["data"] == {
        "verb": "dynamics_retry",
        "setup_id": card.action("Check again")["data"]["setup_id"],
    }
    await run.click("Choose another environment")
    card = await run.card_with_action("Use this environment")
    assert not card.has_action("Choose another environment")
    await run.click("Use this environment", {"environment_id": choices["Contoso Production"]})
    await run.card_with("Connected to Dynamics 365: Contoso Production")

    response = await run.save_settings("Harbourside in Teams", plan="standard", timezone="Pacific/Auckland")
    assert response.status_code < 300
    await bot.connector.wait_for_text("Connection 'Harbourside in Teams' created")
    (connection,) = await bot.connections(chat)
    assert connection.dataverse_env_name == "Contoso Production"
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) is not None


async def test_in_a_teams_channel_the_thread_card_has_the_popup(
    bot: BotHarness, teams_reaches_the_fake_connector: list[str]
) -> None:
    chat = in_teams(bot.channel(ALICE))
    run = await start_setup(chat)
    assert run.thread, "the setup runs in its own thread"
    card = await run.card_with_action("Connect to Xero")
    page = await run.browser.xero(signin_url(card, "Connect to Xero"), tenants=[NZ_TENANT_ID])
    assert await chat.verify_state(page.code, card=run.card()) == 200
    await run.card_with("Connected to Xero: Harbourside Trading (NZ)")
    assert signin_url(await run.card_with_action("Connect to Dynamics 365"), "Connect to Dynamics 365")
    # Every call, the new thread's included, went to Teams' service URL (never elsewhere).
    assert teams_reaches_the_fake_connector
    assert {u for u in teams_reaches_the_fake_connector if not u.startswith(TEAMS_SERVICE_URL)} == set()


# ---- a local client (the harness's fake connector is on 127.0.0.1, like the Playground) --------------


async def test_locally_the_buttons_stay_open_url_with_the_same_titles(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    card = await run.card_with_action("Connect to Xero")
    (xero,) = signin_buttons(card)
    assert xero["type"] == "Action.OpenUrl"
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    await run.say(page.code)
    card = await run.card_with_action("Connect to Dynamics 365")
    (dynamics,) = signin_buttons(card)
    assert dynamics["type"] == "Action.OpenUrl"
    assert {xero["title"], dynamics["title"]} == set(SIGNIN_TITLES)


async def test_with_one_environment_there_is_no_other_to_choose(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    await run.say(page.code)
    await run.card_with("Connected to Xero")
    # Carol can use one environment only, where she lacks privileges: the solution step, one choice.
    page = await run.sign_in_dynamics(CAROL.upn, CAROL.password)
    await run.say(page.code)
    card = await run.card_with(f"lacks {len(REQUIRED_ROLE_PRIVILEGES)} privilege(s)")
    assert card.has_action("Check again")
    assert not card.has_action("Choose another environment")
