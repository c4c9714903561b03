"""Every way a setup can fail ends with a clear message, a way forward, and nothing half-stored."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.dialogs import SetupOptions
from bot.storage.base import Connection, TokenKind
from bot.sync.tables import CONNECTOR, REQUIRED_ROLE_PRIVILEGES
from sandbox.entra import CAROL, DAVE
from sandbox.xero.seed import NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BOB, BotHarness, SetupRun, open_bot, start_setup


async def nothing_kept(bot: BotHarness, run: SetupRun) -> None:
    """No connection, no token of any kind, no pending sign-in, no Connector row for the setup."""
    assert await bot.store.list_connections() == []
    assert await bot.store.all_token_blobs() == []
    dumped = [key for key, _ in await bot.store.dump_all()]
    assert not [k for k in dumped if "pending:" in k], dumped


async def signed_in_to_xero(run: SetupRun) -> None:
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    assert page.code, page.text[:300]
    await run.say(page.code)
    await run.card_with("Connected to Xero")


async def test_cancel_stops_the_setup_and_keeps_nothing(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    await signed_in_to_xero(run)
    assert await bot.store.all_token_blobs() != [], "the verified Xero tokens are kept while the setup runs"
    link = (await run.card_with_action("Connect to Dynamics 365")).action_url("Connect to Dynamics 365")

    mark = bot.connector.mark()
    await chat.say("cancel")
    await bot.connector.wait_for_text("Setup cancelled. Nothing was kept", since=mark)
    card = await run.card_with("Setup cancelled")
    assert card.actions() == []
    await nothing_kept(bot, run)

    # The old link leads nowhere, and the card's buttons are dead.
    page = await run.browser.entra(link, upn="alice@contoso.example", password="Alice-Sandbox-1!")
    assert "no longer waiting for a sign-in" in page.text
    await nothing_kept(bot, run)
    mark = bot.connector.mark()
    await chat.submit(card, {"verb": "xero_retry", "setup_id": "x" * 32})
    await bot.connector.wait_for_text("no longer active", since=mark)
    await chat.say("cancel")
    await bot.connector.wait_for_text("There's nothing to cancel here", since=mark)


async def test_denial_on_xero_consent_page(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    mark = bot.connector.mark()
    page = await run.sign_in_xero(allow=False)
    assert page.status == 400
    assert "Sign-in cancelled" in page.text
    await bot.connector.wait_for_text("The Xero sign-in didn't complete: You cancelled", since=mark)
    card = await run.card_with_action("Try again")
    assert not card.has_action("Connect to Xero")
    await nothing_kept(bot, run)
    await run.click("Try again")
    await run.card_with_action("Connect to Xero")
    await signed_in_to_xero(run)


async def test_denial_on_entra_consent_page(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    await signed_in_to_xero(run)
    page = await run.sign_in_dynamics(accept=False)
    assert "Sign-in cancelled" in page.text
    await run.card_with_action("Try again")
    blobs = await bot.store.all_token_blobs()
    assert [kind for _, kind, _ in blobs] == [TokenKind.XERO], "a refused Dynamics sign-in must leave nothing"


async def test_expired_link_and_expired_state(tmp_path: Path) -> None:
    async with open_bot(tmp_path, options=SetupOptions(state_ttl_seconds=0.6)) as bot:
        chat = bot.personal(ALICE)
        run = await start_setup(chat)
        link = (await run.card_with_action("Connect to Xero")).action_url("Connect to Xero")
        await asyncio.sleep(0.7)
        mark = bot.connector.mark()
        page = await run.browser.get(link)
        assert page.status == 400
        assert "has expired" in page.text
        await bot.connector.wait_for_text("didn't complete", since=mark)
        await run.card_with_action("Try again")

        # The provider state expires while the person is at Xero.
        await run.click("Try again")
        run.browser.hold_callbacks = True
        held = await run.sign_in_xero()
        await asyncio.sleep(0.7)
        mark = bot.connector.mark()
        page = await run.browser.get(held.url)
        assert page.status == 400
        assert "has expired" in page.text
        await bot.connector.wait_for_text("didn't complete", since=mark)
        await nothing_kept(bot, run)


async def test_a_replayed_callback_is_refused_and_changes_nothing(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    run.browser.hold_callbacks = True
    held = await run.sign_in_xero()
    first = await run.browser.get(held.url)
    assert first.code
    mark = bot.connector.mark()
    again = await run.browser.get(held.url)
    assert again.status == 400
    assert "already used" in again.text
    await bot.connector.wait_for_text("used a second time; I refused it", since=mark)
    # The first sign-in still stands.
    await run.say(first.code)
    await run.card_with("Connected to Xero")


async def test_a_code_typed_by_someone_else_discards_the_sign_in(bot: BotHarness) -> None:
    chat = bot.channel(ALICE)
    run = await start_setup(chat)
    page = await run.sign_in_xero()
    mark = bot.connector.mark()
    await run.say(page.code, user=BOB)
    await bot.connector.wait_for_text("Only Alice Anders can confirm this sign-in", since=mark)
    await run.card_with("Someone other than the person who started the setup typed the code")
    await nothing_kept(bot, run)
    # The code is gone for Alice too: she signs in again.
    mark = bot.connector.mark()
    await run.say(page.code)
    assert not [t for t in bot.connector.texts(mark) if "Connected" in t]
    await nothing_kept(bot, run)


async def test_wrong_codes_are_limited(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    page = await run.sign_in_xero()
    wrong = "111-111" if page.code != "111-111" else "222-222"
    for _ in range(4):
        mark = bot.connector.mark()
        await run.say(wrong)
        await bot.connector.wait_for_text("doesn't match", since=mark)
    await run.say(wrong)
    await run.card_with("Too many wrong codes")
    await nothing_kept(bot, run)


async def test_missing_solution_then_installed(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    await signed_in_to_xero(run)
    await run.sign_in_dynamics()
    card = await run.card_with_action("Use this environment")
    test_env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Test")
    await run.click("Use this environment", {"environment_id": test_env["value"]})
    card = await run.card_with("Our solution isn't installed in Contoso Test yet")
    assert card.has_action("Check again")
    assert card.has_action("Install it for me")  # alice is a System Administrator of Contoso Test
    assert "Import solution" in card.card_text
    assert card.has_action("Download the solution zip")
    assert card.has_action("Open the AppSource listing")
    await run.click("Check again")
    await run.card_with("Our solution isn't installed in Contoso Test yet")
    assert await bot.store.list_connections() == []

    bot.sandboxes.dataverse.install_solution("contosotest")
    await run.click("Check again")
    await run.card_with("Connected to Dynamics 365: Contoso Test")
    await run.settings_card()


async def test_missing_privileges_are_listed(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    run = await start_setup(chat)
    await signed_in_to_xero(run)
    page = await run.sign_in_dynamics(CAROL.upn, CAROL.password)
    assert page.code, "Carol is not the Teams user: the sign-in must be confirmed with the code"
    await run.say(page.code)
    card = await run.card_with(f"lacks {len(REQUIRED_ROLE_PRIVILEGES)} privilege(s)")
    assert "Create on Xero Connector at User level" in card.card_text
    assert "Read on Xero Connector at Organization level" in card.card_text
    assert f"and {len(REQUIRED_ROLE_PRIVILEGES) - 15} more" in card.card_text
    assert card.has_action("Check again")
    assert await bot.store.list_connections() == []

    bot.sandboxes.dataverse.grant_role("contosoprod", CAROL.upn)
    await run.click("Check again")
    await run.card_with("Connected to Dynamics 365: Contoso Production")


async def test_no_environment_at_all(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    await signed_in_to_xero(run)
    page = await run.sign_in_dynamics(DAVE.upn, DAVE.password)
    await run.say(page.code)
    await run.card_with("no Dynamics 365 environment it can use")
    blobs = await bot.store.all_token_blobs()
    assert [kind for _, kind, _ in blobs] == [TokenKind.XERO], "Dave's Dynamics sign-in must not be kept"


async def _at_settings(bot: BotHarness) -> SetupRun:
    run = await start_setup(bot.personal(ALICE))
    await signed_in_to_xero(run)
    await run.sign_in_dynamics()
    card = await run.card_with_action("Use this environment")
    env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == "Contoso Production")
    await run.click("Use this environment", {"environment_id": env["value"]})
    await run.settings_card()
    return run


async def _connector_names(bot: BotHarness, reader: Connection) -> list[str]:
    """The Connector rows' names in the reader's environment, read back with the real client."""
    rows = await bot.runtime.dataverse_factory(reader).find_rows(CONNECTOR, "", ["xdc_name"])
    return sorted(str(row["xdc_name"]) for row in rows)


async def test_invalid_names_come_back_on_the_card(bot: BotHarness) -> None:
    # Another team's connection to the same environment (set up in another conversation).
    existing = await bot.harness.connect(name="Taken Name", environment="Contoso Production")
    run = await _at_settings(bot)
    cases = {
        "": "Give the connection a name.",
        "Bell\u0007Name": "can't contain line breaks, tabs or other control characters",
        "x" * 101: "100 characters or fewer",
        "taken name": "already has a connection called 'taken name'",
    }
    for name, message in cases.items():
        response = await run.save_settings(name)
        assert response.status_code < 300
        card = await run.settings_card()
        assert message in card.card_text, (name, card.card_text)
        assert await bot.connections(run.chat) == []
    assert await _connector_names(bot, existing) == ["Taken Name"]
    await run.save_settings("A Fine Name")
    await bot.connector.wait_for_text("Connection 'A Fine Name' created")
    assert await _connector_names(bot, existing) == ["A Fine Name", "Taken Name"]


async def test_unknown_timezone_comes_back_on_the_card(bot: BotHarness) -> None:
    run = await _at_settings(bot)
    await run.save_settings("Zoned", timezone="Mars/Olympus_Mons")
    card = await run.settings_card()
    assert "Choose a timezone from the list" in card.card_text
    assert await bot.store.list_connections() == []
    await run.save_settings("Zoned", timezone="Pacific/Auckland")
    await bot.connector.wait_for_text("Connection 'Zoned' created")


async def test_tampered_card_data_is_refused(bot: BotHarness) -> None:
    run = await _at_settings(bot)
    chat = run.chat
    settings = await run.settings_card()
    setup_id = settings.action("Save")["data"]["setup_id"]
    inputs = {"connection_name": "Sneaky", "plan": "premium", "timezone": "UTC", "notify_mode": "every_run"}
    cases = [
        ({"verb": "settings_submit", "setup_id": "0" * 32, **inputs}, "no longer active"),  # another setup
        ({"verb": "xero_pick_org", "setup_id": setup_id, "xero_tenant_id": NZ_TENANT_ID}, "another step"),
        ({"verb": "dynamics_pick_env", "setup_id": setup_id, "environment_id": "../../etc"}, "from the list"),
        ({"verb": "settings_submit", "setup_id": setup_id, "connection_id": "someone-elses", **inputs}, ""),
    ]
    for data, reply in cases:
        mark = bot.connector.mark()
        response = await chat.submit(settings, data)
        assert response.status_code < 300
        if reply:
            await bot.connector.wait_for_text(reply, since=mark)
        else:
            await bot.connector.wait_for(
                lambda e: e.activity_id == run.settings_card_id and "out of date" in e.card_text, since=mark
            )
        assert await bot.store.list_connections() == []
    await run.save_settings("Honest")
    await bot.connector.wait_for_text("Connection 'Honest' created")
    [connection] = await bot.store.list_connections()
    assert await _connector_names(bot, connection) == ["Honest"]


async def test_a_xero_error_at_the_token_exchange(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    bot.sandboxes.xero.fail_next(1, 400, path_prefix="/connect/token")
    mark = bot.connector.mark()
    page = await run.sign_in_xero()
    assert page.status == 400
    assert "Xero did not accept the sign-in" in page.text
    await bot.connector.wait_for_text("The Xero sign-in didn't complete: Xero did not accept", since=mark)
    await run.card_with_action("Try again")
    await nothing_kept(bot, run)


async def test_one_setup_at_a_time_per_conversation(bot: BotHarness) -> None:
    chat = bot.channel(ALICE)
    run = await start_setup(chat)
    mark = bot.connector.mark()
    await chat.say("sync connect", user=BOB)
    await bot.connector.wait_for_text("Alice Anders has a setup in progress in this conversation", since=mark)
    await chat.say("connect")
    await bot.connector.wait_for_text("You have a setup in progress", since=mark)
    await chat.say("cancel", user=BOB, thread=run.thread)
    await bot.connector.wait_for_text("Only Alice Anders can use this setup", since=mark)
    assert "Setup cancelled" not in run.card().card_text


async def test_an_idle_setup_gives_way_and_leaves_nothing(tmp_path: Path) -> None:
    async with open_bot(tmp_path, options=SetupOptions(idle_timeout=timedelta(seconds=0))) as bot:
        chat = bot.channel(ALICE)
        abandoned = await start_setup(chat)
        await signed_in_to_xero(abandoned)
        assert await bot.store.all_token_blobs() != []
        taking_over = await start_setup(chat, user=BOB)
        assert taking_over.card_id != abandoned.card_id
        await abandoned.card_with("Setup cancelled")
        assert await bot.store.all_token_blobs() == [], "the abandoned setup's Xero sign-in must go"
        assert "Started by Bob Brown" in taking_over.card().card_text
