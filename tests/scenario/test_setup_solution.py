"""The setup's solution step against the Dataverse sandbox, which learns our tables only by importing our zip.

"Install it for me" for a user who may import solutions, what a user who may not sees, the download
link (the zip it serves imports), an import started twice, a failed import, an environment with a newer
version, an older version that is too old to sync with, and the upgrade offered by `sync status`.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.dialogs import solution_step
from bot.solution import build_zip, solution_version, zip_filename
from bot.sync.tables import CONNECTOR, SOLUTION_UNIQUE_NAME
from sandbox.entra import ALICE as ENTRA_ALICE
from sandbox.entra import CAROL
from tests.scenario.botharness import ALICE, BotHarness, SetupRun, open_bot, start_setup
from tests.scenario.opsharness import connect_in, install_ops
from tests.scenario.test_setup_failures import signed_in_to_xero

TEST_ENV = "contosotest"  # alice is its System Administrator; our solution is not installed


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


def _imports(bot: BotHarness) -> list[str]:
    return [r.path for r in bot.sandboxes.dataverse.requests if r.path.endswith("/ImportSolutionAsync")]


async def _at_solution_step(bot: BotHarness, env_title: str = "Contoso Test") -> SetupRun:
    run = await start_setup(bot.personal(ALICE))
    await signed_in_to_xero(run)
    await run.sign_in_dynamics()
    card = await run.card_with_action("Use this environment")
    env = next(c for c in card.inputs()["environment_id"]["choices"] if c["title"] == env_title)
    await run.click("Use this environment", {"environment_id": env["value"]})
    return run


async def test_install_it_for_me_shows_progress_and_carries_on_to_the_settings(bot: BotHarness) -> None:
    bot.sandboxes.dataverse.set_import_timing(import_seconds=0.6)
    run = await _at_solution_step(bot)
    await run.card_with_action("Install it for me")

    await run.click("Install it for me")

    await run.card_with("Installing")
    await run.card_with("Connected to Dynamics 365: Contoso Test", timeout=20)
    await run.settings_card()
    assert len(_imports(bot)) == 1
    solutions = bot.sandboxes.dataverse.rows(TEST_ENV, "solutions")
    ours = [s for s in solutions if s["uniquename"] == SOLUTION_UNIQUE_NAME]
    assert [s["version"] for s in ours] == [solution_version()]
    assert bot.sandboxes.dataverse.rows(TEST_ENV, CONNECTOR.entity_set) == []  # nothing written before Save


async def test_install_clicked_twice_imports_once(bot: BotHarness) -> None:
    bot.sandboxes.dataverse.set_import_timing(import_seconds=1.0)
    run = await _at_solution_step(bot)
    await run.card_with_action("Install it for me")
    card = run.card()
    mark = bot.connector.mark()

    first = run.chat.click(card, "Install it for me", None, user=ALICE)
    second = run.chat.click(card, "Install it for me", None, user=ALICE)
    await asyncio.gather(first, second)

    await bot.connector.wait_for_text("already being installed", since=mark)
    await run.card_with("Connected to Dynamics 365: Contoso Test", timeout=20)
    assert len(_imports(bot)) == 1


async def test_a_failed_import_shows_dataverses_reason_and_the_manual_ways(bot: BotHarness) -> None:
    run = await _at_solution_step(bot)
    await run.card_with_action("Install it for me")
    # The import is refused by the service (an outage answering the action); nothing is installed.
    bot.sandboxes.dataverse.fail_next(1, 400, path_prefix="ImportSolutionAsync")

    await run.click("Install it for me")

    card = await run.card_with("didn't start the import")
    assert card.has_action("Download the solution zip")
    assert card.has_action("Check again")
    assert not [s for s in bot.sandboxes.dataverse.rows(TEST_ENV, "solutions") if s["uniquename"] == SOLUTION_UNIQUE_NAME]
    assert await bot.store.list_connections() == []


async def test_a_user_who_cannot_import_is_told_why_and_who_can(bot: BotHarness) -> None:
    bot.sandboxes.dataverse.uninstall_solution("contosoprod")
    run = await start_setup(bot.personal(ALICE))
    await signed_in_to_xero(run)
    page = await run.sign_in_dynamics(CAROL.upn, CAROL.password)
    await run.say(page.code)

    card = await run.card_with("Our solution isn't installed in Contoso Production")

    assert not card.has_action("Install it for me")
    assert "can't import solutions" in card.card_text
    assert "System Administrator or System Customizer" in card.card_text
    assert card.has_action("Download the solution zip")
    # Sent anyway (a forged submit naming the setup): refused on the server, nothing imported.
    setup_id = card.action("Check again")["data"]["setup_id"]
    mark = bot.connector.mark()
    await run.chat.submit(card, {"verb": "solution_install", "setup_id": setup_id}, user=ALICE)
    await run.card_with("can't import solutions")
    assert _imports(bot) == []
    assert bot.connector.mark() > mark


async def test_the_download_link_serves_a_zip_that_imports(bot: BotHarness) -> None:
    run = await _at_solution_step(bot)
    card = await run.card_with_action("Download the solution zip")
    url = card.action_url("Download the solution zip")
    assert url.endswith(f"/solution/{zip_filename(managed=True)}")

    async with httpx.AsyncClient() as http:
        response = await http.get(url)
        missing = await http.get(url.replace("_managed.zip", "_other.zip"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert zip_filename(managed=True) in response.headers["content-disposition"]
    assert missing.status_code == 404
    bot.sandboxes.dataverse.install_solution(TEST_ENV, response.content)
    await run.click("Check again")
    await run.card_with("Connected to Dynamics 365: Contoso Test")


async def test_a_newer_version_is_kept_and_the_setup_carries_on(bot: BotHarness) -> None:
    bot.sandboxes.dataverse.install_solution(TEST_ENV, build_zip(managed=True, version="99.0.0.0"))
    run = await _at_solution_step(bot)
    await run.card_with("Connected to Dynamics 365: Contoso Test")
    assert _imports(bot) == []


async def test_a_version_too_old_to_sync_with_is_upgraded_for_me(bot: BotHarness) -> None:
    bot.sandboxes.dataverse.install_solution(TEST_ENV, build_zip(managed=True, version="0.9.0.0"))
    run = await _at_solution_step(bot)

    card = await run.card_with("too old for this bot")
    assert card.has_action("Upgrade it for me")
    assert not card.has_action("Continue with version 0.9.0.0")  # the sync could not run on it

    await run.click("Upgrade it for me")
    await run.card_with("Connected to Dynamics 365: Contoso Test", timeout=20)
    versions = [s["version"] for s in bot.sandboxes.dataverse.rows(TEST_ENV, "solutions") if s["uniquename"] == SOLUTION_UNIQUE_NAME]
    assert versions == [solution_version()]


async def test_status_offers_the_upgrade_and_runs_it(bot: BotHarness) -> None:
    chat = bot.personal(ALICE)
    await connect_in(bot, chat, name="Acme")
    bot.sandboxes.dataverse.uninstall_solution("contosoprod")
    bot.sandboxes.dataverse.install_solution("contosoprod", build_zip(managed=True, version="0.9.0.0"))

    mark = bot.connector.mark()
    await chat.say("sync status")
    status = await bot.connector.wait_for_card("Our solution", since=mark)
    assert "0.9.0.0" in status.card_text
    assert solution_version() in status.card_text
    assert status.has_action("Upgrade it for me")
    assert status.has_action("Download the upgrade")

    # The connection's Dynamics user (Basic User + Xero Connector User) may not import solutions.
    mark = bot.connector.mark()
    await chat.click(status, "Upgrade it for me")
    await bot.connector.wait_for_text("can't import solutions", since=mark)
    assert _imports(bot) == []

    bot.sandboxes.dataverse.grant_role("contosoprod", ENTRA_ALICE.upn, "System Customizer")
    mark = bot.connector.mark()
    await chat.click(status, "Upgrade it for me")
    await bot.connector.wait_for_text(f"now version {solution_version()}", since=mark, timeout=20)
    versions = [s["version"] for s in bot.sandboxes.dataverse.rows("contosoprod", "solutions") if s["uniquename"] == SOLUTION_UNIQUE_NAME]
    assert versions == [solution_version()]


async def test_an_import_that_fails_half_way_shows_dataverses_reason(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service accepts the import, then its system job fails (here: a relationship to a table that
    does not exist, which Dataverse finds after creating the tables, and rolls back)."""
    good = build_zip(managed=True)
    with zipfile.ZipFile(io.BytesIO(good)) as source:
        files = {name: source.read(name) for name in source.namelist()}
    files["customizations.xml"] = files["customizations.xml"].replace(
        b"<ReferencedEntityName>xdc_Connector</ReferencedEntityName>",
        b"<ReferencedEntityName>xdc_Missing</ReferencedEntityName>",
        1,
    )
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as target:
        for name, data in files.items():
            target.writestr(name, data)
    monkeypatch.setattr(solution_step, "shipped_zip", lambda: broken.getvalue())
    run = await _at_solution_step(bot)
    await run.card_with_action("Install it for me")

    await run.click("Install it for me")

    card = await run.card_with("The import didn't complete", timeout=20)
    assert "xdc_missing" in card.card_text.lower()
    assert card.has_action("Install it for me")  # may be tried again
    assert card.has_action("Download the solution zip")
    assert not [s for s in bot.sandboxes.dataverse.rows(TEST_ENV, "solutions") if s["uniquename"] == SOLUTION_UNIQUE_NAME]


async def test_the_setup_waits_for_the_new_keys_before_the_settings(bot: BotHarness) -> None:
    """After an import Dataverse indexes the new alternate keys; every write of ours is an upsert by key,
    so the setup carries on only once they are Active (EntityKeyIndexStatus), and Save then works."""
    bot.sandboxes.dataverse.set_import_timing(import_seconds=0.2, key_seconds=1.5)
    run = await _at_solution_step(bot)
    await run.card_with_action("Install it for me")

    await run.click("Install it for me")

    await run.card_with("preparing the tables")
    await run.card_with("Connected to Dynamics 365: Contoso Test", timeout=20)
    response = await run.save_settings("Harbourside to Test")
    assert response.status_code < 300
    await bot.connector.wait_for_text("created; the first sync is running now", timeout=20)


async def test_check_again_while_keys_are_being_built_says_so(bot: BotHarness) -> None:
    bot.sandboxes.dataverse.set_import_timing(key_seconds=2.0)
    bot.sandboxes.dataverse.install_solution(TEST_ENV)
    run = await _at_solution_step(bot)

    card = await run.card_with("still preparing our tables")
    assert card.has_action("Check again")
    assert not card.has_action("Install it for me")

    await asyncio.sleep(2.1)
    await run.click("Check again")
    await run.card_with("Connected to Dynamics 365: Contoso Test")
