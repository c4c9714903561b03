"""OAuth attacks on the setup's sign-in (`/oauth/xero/start`, `/oauth/xero/callback`): an unknown,
garbage or tampered state, a code swapped in from another person's sign-in (what PKCE stops), a redirect
URI the provider does not know, and a sign-in confirmed by someone other than the Teams user who asked.
Each is refused with a clear page and nothing is stored. The scenario harness drives the real bot, the
Xero sandbox and a browser (tests/scenario/botharness.py).

Covered elsewhere (not repeated): expired link and state, a replayed callback, a code typed by another
person in the chat, denial on the consent pages (tests/scenario/test_setup_failures.py); a Dynamics
callback from another flow (tests/integration/test_dynamics_auth.py).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from bot.dialogs.wording import MESSAGES
from sandbox.xero.sandbox import CLIENT_ID
from sandbox.xero.seed import NZ_TENANT_ID
from tests.scenario.botharness import ALICE, BOB, BotHarness, SetupRun, open_bot, start_setup

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path) as harness:
        yield harness


async def nothing_stored(bot: BotHarness) -> None:
    assert await bot.store.list_connections() == []
    assert await bot.store.all_token_blobs() == []
    assert not [k for k, _ in await bot.store.dump_all() if "pending:" in k]


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def tampered(value: str) -> str:
    """The same value with one character changed (as an attacker editing the URL would)."""
    middle = len(value) // 2
    return value[:middle] + ("A" if value[middle] != "A" else "B") + value[middle + 1 :]


async def held_callback(run: SetupRun) -> str:
    """Sign in at Xero in the run's browser, stop before the redirect back to the bot: its URL."""
    run.browser.hold_callbacks = True
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    assert page.status in (302, 303), page.text[:300]
    assert "/oauth/xero/callback" in page.url
    return page.url


async def test_unknown_garbage_and_missing_state_are_refused(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    callback = f"{bot.url}/oauth/xero/callback"
    async with httpx.AsyncClient(timeout=10) as browser:
        for query in (
            {"state": secrets.token_urlsafe(24), "code": "stolen-code"},  # well-formed, never issued
            {"state": "x" * 5000, "code": "c"},
            {"state": "../../etc/passwd", "code": "c"},
            {"state": "<script>alert(1)</script>", "code": "c"},
            {"code": "c"},
            {"state": ""},
            {},
        ):
            response = await browser.get(callback, params=query)
            assert 400 <= response.status_code < 500, (query, response.status_code)
            assert "<script>alert(1)</script>" not in response.text
        for query in ({"link": secrets.token_urlsafe(24)}, {"link": "%00"}, {}):
            response = await browser.get(f"{bot.url}/oauth/xero/start", params=query)
            assert 400 <= response.status_code < 500, (query, response.status_code)
    await nothing_stored(bot)
    # The real sign-in is untouched by all that.
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    assert page.code, page.text[:300]


async def test_a_tampered_state_or_link_is_refused_and_the_genuine_one_still_works(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    link = (await run.card_with_action("Connect to Xero")).action_url("Connect to Xero")
    link_token = parse_qs(urlsplit(link).query)["link"][0]
    forged = await run.browser.get(with_query(link, link=tampered(link_token)))
    assert forged.status == 400
    assert MESSAGES["invalid_state"] in unescape(forged.text)

    url = await held_callback(run)
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = await run.browser.get(with_query(url, state=tampered(state)))
    assert page.status == 400
    assert MESSAGES["invalid_state"] in unescape(page.text)
    await nothing_stored(bot)

    genuine = await run.browser.get(url)
    assert genuine.code, genuine.text[:300]


async def test_a_code_from_another_persons_sign_in_is_refused_pkce(bot: BotHarness) -> None:
    """Code injection: Mallory signs in at Xero herself, then makes Alice's browser deliver Mallory's
    code with Alice's state. The state is genuine, but the code was issued for Mallory's PKCE challenge:
    the exchange with Alice's verifier fails, and nothing of Mallory's lands in Alice's setup."""
    alice = await start_setup(bot.personal(ALICE))
    mallory = await start_setup(bot.personal(BOB))
    alice_url = await held_callback(alice)
    mallory_url = await held_callback(mallory)
    mallory_code = parse_qs(urlsplit(mallory_url).query)["code"][0]

    mark = bot.connector.mark()
    page = await alice.browser.get(with_query(alice_url, code=mallory_code))
    assert page.status >= 400
    assert not page.code
    await nothing_stored(bot)
    token_calls = [r for r in bot.sandboxes.xero.requests if r.path == "/connect/token"]
    assert token_calls, "the exchange reached Xero"
    assert token_calls[-1].status == 400  # invalid_grant: code_verifier does not match the challenge
    assert token_calls[-1].form.get("code_verifier") == "<redacted>", "the product sent its verifier"
    await bot.connector.wait_for_text("didn't complete", since=mark)


async def test_sign_in_links_use_pkce_s256_and_the_registered_redirect(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    link = (await run.card_with_action("Connect to Xero")).action_url("Connect to Xero")
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        response = await browser.get(link)
    assert response.status_code in (302, 303)
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert query["redirect_uri"] == [bot.settings.redirect_uri("xero")]
    assert len(query["state"][0]) >= 16


async def test_a_redirect_uri_xero_does_not_know_ends_at_xero_with_nothing_stored(bot: BotHarness) -> None:
    """Deployed under a URL the Xero app was not told about: Xero refuses to send anyone back to it."""
    bot.sandboxes.xero.identity.apps[CLIENT_ID].redirect_uris.clear()
    run = await start_setup(bot.personal(ALICE))
    page = await run.sign_in_xero()
    assert page.status >= 400  # Xero's own error page: it never redirects to an unknown URI
    assert "/identity/connect/authorize" in page.url
    assert "redirect_uri" in page.text.lower()
    assert not page.code
    await nothing_stored(bot)


async def test_verify_state_from_another_user_or_with_garbage_stores_nothing(bot: BotHarness) -> None:
    """The Teams sign-in popup path (signin/verifyState). The refusal itself, said in the chat, is proven by
    tests/scenario/test_setup_flow.py::test_teams_signin_popup_verifies_with_verify_state; here: nothing
    is kept (the handler answers 412 or 400, checked there; the chat and the store say more)."""
    chat = bot.channel(ALICE)
    run = await start_setup(chat)
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    assert page.code
    mark = bot.connector.mark()
    assert await chat.verify_state(page.code, user=BOB, card=run.card()) < 500
    await bot.connector.wait_for_text("Only Alice Anders can confirm", since=mark)
    await nothing_stored(bot)
    for guess in ("000-000", "123456", "x" * 300, "", "\u0000"):
        assert await chat.verify_state(guess, card=run.card()) < 500
    await nothing_stored(bot)
