"""The conversational setup end to end: personal chat, channel, several organisations, Teams' sign-in
popup, a restart at every waiting point, and the time from Save to the first run."""

from __future__ import annotations

import time
from pathlib import Path

from bot.storage.base import TokenKind
from bot.sync.tables import CONNECTOR, CONNECTOR_SETTINGS
from sandbox.xero.seed import AU_TENANT_ID, NZ_TENANT_ID
from tests.integration.harness import RecordingNotifier
from tests.scenario.botharness import (
    ALICE,
    BOB,
    BotHarness,
    connect_via_chat,
    open_bot,
    start_setup,
)

SETUP_TITLE = "Set up a connection"


async def dynamics_rows(bot: BotHarness, connection_id: str) -> tuple[list[dict], list[dict]]:
    """The Connector and Settings rows of a connection, read back from the Dataverse sandbox."""
    connection = await bot.store.get_connection(connection_id)
    assert connection is not None
    dv = bot.runtime.dataverse_factory(connection)
    connectors = await dv.find_rows(
        CONNECTOR,
        f"xdc_connectionid eq '{connection_id}'",
        ["xdc_connectorid", "xdc_name", "xdc_plan", "xdc_timezone", "xdc_xerotenantid", "xdc_xeroorganisationname"],
    )
    settings = await dv.find_rows(
        CONNECTOR_SETTINGS, "", ["xdc_name", "xdc_plan", "xdc_timezone", "_xdc_connectorid_value", "xdc_isdefault"]
    )
    mine = [row for row in settings if connectors and row.get("_xdc_connectorid_value") == connectors[0]["xdc_connectorid"]]
    return connectors, mine


async def test_full_setup_in_a_personal_chat(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    connection = await connect_via_chat(
        chat, tenant_id=NZ_TENANT_ID, name="Harbourside to Production", plan="premium", timezone="Pacific/Auckland"
    )

    assert connection.name == "Harbourside to Production"
    assert (connection.plan, connection.timezone) == ("premium", "Pacific/Auckland")
    assert connection.created_by_aad_id == ALICE.aad_object_id
    assert connection.conversation_key == chat.key
    assert connection.teams_tenant_id == ALICE.tenant_id
    assert connection.xero_tenant_id == NZ_TENANT_ID
    assert connection.xero_org_name == "Harbourside Trading (NZ)"
    assert connection.xero_timezone == "Pacific/Auckland"
    assert connection.dataverse_env_name == "Contoso Production"
    assert connection.dataverse_user_timezone == "Pacific/Auckland"
    assert await bot.store.get_tokens(connection.id, TokenKind.XERO) is not None
    assert await bot.store.get_tokens(connection.id, TokenKind.DYNAMICS) is not None
    assert await bot.store.get_due(connection.id) is not None, "the first run was not scheduled"

    connectors, settings = await dynamics_rows(bot, connection.id)
    assert [(r["xdc_name"], r["xdc_plan"], r["xdc_timezone"]) for r in connectors] == [
        ("Harbourside to Production", "premium", "Pacific/Auckland")
    ]
    assert connectors[0]["xdc_xerotenantid"] == NZ_TENANT_ID
    assert [(r["xdc_name"], r["xdc_plan"], r["xdc_timezone"]) for r in settings] == [
        ("Harbourside to Production", "premium", "Pacific/Auckland")
    ]
    assert connection.dataverse_connector_row_id == connectors[0]["xdc_connectorid"]

    # One checklist card, updated in place: never a second one.
    checklists = [c for c in bot.connector.sent_cards() if SETUP_TITLE in c.card_text]
    assert len(checklists) == 1
    final = bot.connector.latest(checklists[0].activity_id)
    assert final is not None
    assert "Connected to Xero: Harbourside Trading (NZ)" in final.card_text
    assert "Connected to Dynamics 365: Contoso Production" in final.card_text
    assert "Connection ready" in final.card_text
    assert not final.has_action("Cancel setup")
    assert (
        "Connection 'Harbourside to Production' created; the first sync is running now, I'll post the result here."
        in bot.connector.texts()
    )


async def test_full_setup_in_a_channel_runs_in_its_own_thread(bot: BotHarness) -> None:
    chat = bot.channel(ALICE)
    run = await start_setup(chat)
    created = bot.connector.outbound
    thread_post = next(e for e in created if e.activity_id == run.card_id)
    assert thread_post.kind == "create", "the checklist should start a thread of its own"
    assert run.thread == run.card_id
    assert "Started by Alice Anders" in run.card().card_text

    # Bob sees the card in the channel but cannot act on it.
    mark = bot.connector.mark()
    await run.click("Cancel setup", user=BOB)
    await bot.connector.wait_for_text("Only Alice Anders can use this setup", since=mark)
    assert "Setup cancelled" not in run.card().card_text

    page = await run.sign_in_xero(tenants=[AU_TENANT_ID])
    await run.say(page.code)
    page = await run.sign_in_dynamics()
    assert page.code == "", "Alice's own Entra account proves who signed in: no code needed"
    card = await run.card_with_action("Use this environment")
    production = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Production")
    await run.click("Use this environment", {"environment_id": production["value"]})
    settings = await run.settings_card()
    assert settings.conversation_id.endswith(f";messageid={run.thread}"), "the settings card belongs in the thread"
    mark = bot.connector.mark()
    await run.save_settings("Wattle in Teams", plan="trial", timezone="Australia/Sydney")
    await bot.connector.wait_for_text("Connection 'Wattle in Teams' created", since=mark)

    [connection] = await bot.connections(chat)
    assert connection.thread_activity_id == run.card_id
    assert connection.conversation_key == f"msteams:{chat.channel_id}"
    assert (connection.xero_org_name, connection.plan, connection.timezone) == (
        "Wattle Street Supplies (AU)",
        "trial",
        "Australia/Sydney",
    )
    connectors, settings_rows = await dynamics_rows(bot, connection.id)
    assert [(r["xdc_name"], r["xdc_plan"], r["xdc_timezone"]) for r in connectors] == [
        ("Wattle in Teams", "trial", "Australia/Sydney")
    ]
    assert len(settings_rows) == 1


async def test_several_organisations_are_a_choice_and_one_connection_each(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID, AU_TENANT_ID])
    await run.say(page.code)
    card = await run.card_with_action("Use this organisation")
    titles = {c["title"] for c in card.inputs()["xero_tenant_id"]["choices"]}
    assert titles == {"Harbourside Trading (NZ)", "Wattle Street Supplies (AU)"}
    await run.click("Use this organisation", {"xero_tenant_id": AU_TENANT_ID})
    await run.card_with("Connected to Xero: Wattle Street Supplies (AU)")
    await run.sign_in_dynamics()
    card = await run.card_with_action("Use this environment")
    env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Production")
    await run.click("Use this environment", {"environment_id": env["value"]})
    await run.save_settings("Wattle")
    await bot.connector.wait_for_text("Connection 'Wattle' created")

    # A second setup here: AU has its connection already, so only NZ is offered (and chosen at once).
    second = await start_setup(chat)
    page = await second.sign_in_xero(tenants=[NZ_TENANT_ID, AU_TENANT_ID])
    await second.say(page.code)
    await second.card_with("Connected to Xero: Harbourside Trading (NZ)")


async def test_teams_signin_popup_verifies_with_verify_state(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    page = await run.sign_in_xero()
    assert "microsoftTeams.authentication.notifySuccess" in page.text
    mark = bot.connector.mark()
    # A value that is no state at all is a bad request (answered by our handler, not botbuilder's dispatch).
    assert (await chat.invoke("signin/verifyState", {"other": 1}, card=run.card())).status_code == 400
    assert await chat.verify_state("0" * 201, card=run.card()) == 400
    assert await chat.verify_state("000-000", card=run.card()) == 412
    await bot.connector.wait_for_text("doesn't match the sign-in page", since=mark)
    assert await chat.verify_state(page.code, user=BOB, card=run.card()) == 412
    await bot.connector.wait_for_text("Only Alice Anders can confirm this sign-in", since=mark)
    # Bob held the right code, so that sign-in cannot be trusted: Alice signs in again.
    await run.card_with_action("Try again")
    await run.click("Try again")
    page = await run.sign_in_xero()
    assert await chat.verify_state(page.code, card=run.card()) == 200
    await run.card_with("Connected to Xero: Harbourside Trading (NZ)")


async def test_a_restart_at_every_waiting_point_loses_nothing(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    await bot.restart()  # 1: card out, link not yet opened
    run.browser.hold_callbacks = True
    held = await run.sign_in_xero()
    assert held.status == 302
    assert "/oauth/xero/callback" in held.url
    await bot.restart()  # 2: between the sign-in link and the OAuth callback
    page = await run.browser.get(held.url)
    assert page.code, page.text[:300]
    await bot.restart()  # 3: signed in, code not yet typed
    await run.say(page.code)
    await run.card_with("Connected to Xero")
    held = await run.sign_in_dynamics()
    assert held.status == 302
    await bot.restart()  # 4: between the Dynamics sign-in and its callback
    page = await run.browser.get(held.url)
    assert "Signed in to Dynamics 365" in page.text
    card = await run.card_with_action("Use this environment")
    await bot.restart()  # 5: choosing the environment
    env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Production")
    await run.click("Use this environment", {"environment_id": env["value"]})
    await run.settings_card()
    await bot.restart()  # 6: settings card out
    await run.save_settings("After restarts")
    await bot.connector.wait_for_text("Connection 'After restarts' created")
    assert bot.restarts == 6
    [connection] = await bot.connections(chat)
    assert connection.name == "After restarts"


async def test_settings_card_prefills_the_client_timezone_and_warns_when_clocks_differ(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)  # her Teams client says Europe/London
    run = await start_setup(chat)
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    await run.say(page.code)
    await run.sign_in_dynamics()
    card = await run.card_with_action("Use this environment")
    env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Production")
    await run.click("Use this environment", {"environment_id": env["value"]})
    settings = await run.settings_card()
    inputs = settings.inputs()
    assert inputs["timezone"]["value"] == "Europe/London"
    assert inputs["connection_name"]["value"] == "Harbourside Trading (NZ)"
    assert "Last run (UTC): never" in settings.card_text
    assert "Your Xero organisation keeps the time of Pacific/Auckland" in settings.card_text
    assert "Your Dynamics 365 user's timezone is Pacific/Auckland" in settings.card_text
    plans = {c["value"]: c["title"] for c in inputs["plan"]["choices"]}
    assert plans["standard"].startswith("Standard: every 10 minutes")


async def test_from_save_to_the_first_run_starting_takes_under_five_seconds(tmp_path: Path) -> None:
    async with open_bot(tmp_path, run_scheduler=True) as bot:
        recorder = RecordingNotifier()
        bot.notifier.target = recorder
        chat = bot.personal(ALICE)
        run = await start_setup(chat)
        page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
        await run.say(page.code)
        await run.sign_in_dynamics()
        card = await run.card_with_action("Use this environment")
        env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Production")
        await run.click("Use this environment", {"environment_id": env["value"]})
        await run.settings_card()
        started = time.monotonic()
        await run.save_settings("Quick start")
        await bot.wait_until(lambda: _started(recorder), timeout=5.0)
        assert time.monotonic() - started < 5.0


async def _started(recorder: RecordingNotifier) -> bool:
    return "run_started" in recorder.kinds()


async def test_the_shipped_wiring_runs_the_same_setup(tmp_path: Path) -> None:
    """The same conversation against `bot.teams.app.open_bot_app`, as `app.py` composes it."""
    async with open_bot(tmp_path, use_app=True) as bot:
        chat = bot.channel(ALICE)
        connection = await connect_via_chat(chat, tenant_id=NZ_TENANT_ID, name="Shipped", plan="trial")
        assert (connection.name, connection.plan, connection.dataverse_env_name) == (
            "Shipped",
            "trial",
            "Contoso Production",
        )
        connectors, settings = await dynamics_rows(bot, connection.id)
        assert [r["xdc_name"] for r in connectors] == ["Shipped"]
        assert len(settings) == 1
