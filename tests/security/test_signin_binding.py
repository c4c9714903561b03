"""The browser side of the sign-in (issue 14, findings 2, 3 and 5): each attack reproduced through the
real bot, the Xero sandbox and scripted browsers (tests/scenario/botharness.py), refused, nothing kept.

- a phishing link planted through the callback's `error_description` (anyone who sees a setup card's
  link can make the callback post into the setup's chat);
- a second browser finishing a sign-in through the same link (in a channel everyone sees the link);
- a callback URL opened in a browser that did not start the sign-in;
- a used callback URL reloaded again and again (one chat message, not one per reload);
- a flood of start-link GETs (each used to write a 24-hour entry): the store's growth is bounded;
- the SQLite expiry sweep reads by index.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.dialogs.callbacks import SIGNIN_REQUESTS_PER_MINUTE
from bot.dialogs.oauth_state import MAX_STARTS_PER_LINK
from bot.dialogs.wording import MESSAGES
from bot.storage.sqlite import SqliteStore
from sandbox.xero.seed import NZ_TENANT_ID, UK_TENANT_ID
from tests.scenario.botharness import ALICE, BotHarness, SetupRun, open_bot, start_setup

pytestmark = pytest.mark.timeout(90)

PHISHING = "Your session expired. [Sign in again](https://evil.example/login) <b>now</b> **urgently**"


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path) as harness:
        yield harness


async def nothing_stored(bot: BotHarness) -> None:
    assert await bot.store.list_connections() == []
    assert await bot.store.all_token_blobs() == []
    assert not [k for k, _ in await bot.store.dump_all() if "pending:" in k]


async def xero_link(run: SetupRun) -> str:
    return (await run.card_with_action("Connect to Xero")).action_url("Connect to Xero")


async def opened(client: httpx.AsyncClient, link: str) -> str:
    """Open the card's link as a browser does, stop at the redirect to Xero: the flow's state."""
    response = await client.get(link)
    assert response.status_code == 302, response.text[:300]
    return parse_qs(urlsplit(response.headers["location"]).query)["state"][0]


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=15, follow_redirects=False)


async def test_a_phishing_error_description_never_reaches_the_chat_or_the_page(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    run = await start_setup(bot.channel(ALICE))
    link = await xero_link(run)
    caplog.set_level(logging.INFO, logger="bot.dialogs.callbacks")
    async with client() as attacker:
        state = await opened(attacker, link)
        mark = bot.connector.mark()
        page = await attacker.get(
            f"{bot.url}/oauth/xero/callback",
            params={"state": state, "error": "server_error", "error_description": PHISHING},
        )
    assert page.status_code == 400
    await bot.connector.wait_for_text("didn't complete", since=mark)
    said = "\n".join([*bot.connector.texts(mark), run.card().card_text, unescape(page.text)])
    for planted in ("evil.example", "Sign in again", "session expired", "<b>", "urgently"):
        assert planted not in said, planted
    assert "Xero had a problem and couldn't finish the sign-in" in said  # our own sentence
    # The description went to the log, scrubbed: no link, one line.
    logged = [r.getMessage() for r in caplog.records if "ended with error" in r.getMessage()]
    assert logged
    assert "evil.example" not in logged[0]
    assert "<url>" in logged[0]
    await nothing_stored(bot)


async def test_an_unknown_error_code_is_not_echoed_either(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    async with client() as attacker:
        state = await opened(attacker, await xero_link(run))
        mark = bot.connector.mark()
        page = await attacker.get(
            f"{bot.url}/oauth/xero/callback",
            params={"state": state, "error": "[click](https://evil.example)", "error_description": "x"},
        )
    assert page.status_code == 400
    await bot.connector.wait_for_text("didn't complete", since=mark)
    said = "\n".join([*bot.connector.texts(mark), run.card().card_text, unescape(page.text)])
    assert "evil.example" not in said
    assert "Xero couldn't finish the sign-in" in said
    await nothing_stored(bot)


async def test_a_callback_opened_in_another_browser_is_refused_and_the_first_sign_in_still_works(
    bot: BotHarness,
) -> None:
    run = await start_setup(bot.channel(ALICE))
    run.browser.hold_callbacks = True
    held = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    assert "/oauth/xero/callback" in held.url
    mark = bot.connector.mark()
    async with client() as stranger:  # someone who got the URL (a shared screen, a proxy log)
        page = await stranger.get(held.url)
    assert page.status_code == 400
    assert MESSAGES["other_browser"] in unescape(page.text)
    await nothing_stored(bot)
    assert not bot.connector.texts(mark)  # no chat message for a stranger's request
    # The flow is still there for its own browser.
    genuine = await run.browser.get(held.url)
    assert genuine.code, genuine.text[:300]
    await run.say(genuine.code)
    await run.card_with("Connected to Xero")


async def test_a_second_browser_on_the_same_link_is_refused_while_a_sign_in_is_under_way(
    bot: BotHarness,
) -> None:
    """The attack: Bob, in the channel, completes a sign-in through Alice's link with his own Xero
    organisation, replacing hers; she is talked into typing his code. Now Bob is stopped at the start."""
    run = await start_setup(bot.channel(ALICE))
    link = await xero_link(run)
    async with client() as alice_browser:
        await opened(alice_browser, link)  # Alice's sign-in is under way
        async with client() as bob_browser:
            refused = await bob_browser.get(link)
        assert refused.status_code == 409
        assert MESSAGES["signin_busy"] in unescape(refused.text)
        assert "location" not in refused.headers
        # Alice's browser may open her link again (a reload): still hers.
        await opened(alice_browser, link)
    await nothing_stored(bot)


async def test_a_second_callback_while_a_code_waits_does_not_replace_it(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    run.browser.hold_callbacks = True
    first_url = (await run.sign_in_xero(tenants=[NZ_TENANT_ID])).url
    # (Another organisation: Xero moves an organisation's connection to the newest consent.)
    second_url = (await run.sign_in_xero(tenants=[UK_TENANT_ID])).url
    first = await run.browser.get(first_url)
    assert first.code
    second = await run.browser.get(second_url)
    assert second.status == 409
    assert not second.code
    assert MESSAGES["code_pending"] in unescape(second.text)
    await run.say(first.code)  # the first sign-in still stands
    await run.card_with("Connected to Xero")


async def test_a_replayed_callback_is_reported_to_the_chat_once(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    run.browser.hold_callbacks = True
    held = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    first = await run.browser.get(held.url)
    assert first.code
    mark = bot.connector.mark()
    for _ in range(8):
        again = await run.browser.get(held.url)
        assert again.status == 400
        assert "already used" in again.text
    await bot.connector.wait_for_text("used a second time", since=mark)
    replays = [t for t in bot.connector.texts(mark) if "used a second time" in t]
    assert len(replays) == 1, replays
    await run.say(first.code)
    await run.card_with("Connected to Xero")


async def test_a_flood_of_start_links_is_capped_and_the_store_stays_small(bot: BotHarness) -> None:
    await flood_one_link(bot)


async def test_the_flood_is_bounded_on_redis_too(tmp_path: Path, redis_url: str) -> None:
    async with open_bot(tmp_path, redis_url=redis_url) as on_redis:
        await flood_one_link(on_redis)


async def flood_one_link(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    link = await xero_link(run)
    before = len(await bot.store.dump_all())
    statuses: list[int] = []
    async with client() as browser:
        for _ in range(MAX_STARTS_PER_LINK + 15):
            response = await browser.get(link)
            statuses.append(response.status_code)
    assert statuses[:MAX_STARTS_PER_LINK] == [302] * MAX_STARTS_PER_LINK
    assert set(statuses[MAX_STARTS_PER_LINK:]) == {429}
    grown = len(await bot.store.dump_all()) - before
    # Each opening that went through: a flow state and its small marker; plus the link's claim and
    # counters (per link, per address and minute).
    assert grown <= 2 * MAX_STARTS_PER_LINK + 3, grown
    markers = [v for k, v in await bot.store.dump_all() if "seen:flow:" in k]
    assert len(markers) == MAX_STARTS_PER_LINK
    assert all(len(v) < 200 for v in markers), max(len(v) for v in markers)  # no conversation reference


async def test_one_client_address_is_rate_limited_on_the_sign_in_routes(bot: BotHarness) -> None:
    run = await start_setup(bot.personal(ALICE))
    before = len(await bot.store.dump_all())
    statuses: list[int] = []
    async with client() as flood:
        for i in range(SIGNIN_REQUESTS_PER_MINUTE + 10):
            route = "start" if i % 2 else "callback"
            response = await flood.get(f"{bot.url}/oauth/xero/{route}", params={"link": "x" * 30, "state": "y" * 30})
            statuses.append(response.status_code)
    assert 429 not in statuses[:SIGNIN_REQUESTS_PER_MINUTE]
    assert statuses[-1] == 429
    assert statuses.count(429) >= 10
    assert len(await bot.store.dump_all()) - before <= 2  # one counter per address and minute
    # A limited address is told why; the genuine sign-in (the same address here) waits its minute.
    assert run.card().has_action("Connect to Xero")


async def test_a_forged_x_forwarded_for_does_not_dodge_the_limit(bot: BotHarness) -> None:
    """With no trusted proxy (the default) the header is the client's own say: ignored."""
    statuses: list[int] = []
    async with client() as flood:
        for i in range(SIGNIN_REQUESTS_PER_MINUTE + 5):
            response = await flood.get(
                f"{bot.url}/oauth/xero/start", params={"link": "x" * 30}, headers={"X-Forwarded-For": f"10.0.0.{i}"}
            )
            statuses.append(response.status_code)
    assert statuses[-5:] == [429] * 5


def test_behind_trusted_proxies_the_address_they_saw_is_the_clients() -> None:
    from aiohttp.test_utils import make_mocked_request

    from bot.dialogs.callbacks import client_address

    forged_then_real = make_mocked_request(
        "GET", "/oauth/xero/start", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.7, 10.1.1.1"}
    )
    assert client_address(forged_then_real, 0) != "203.0.113.7"  # no proxy trusted: the header is ignored
    assert client_address(forged_then_real, 1) == "10.1.1.1"  # what the one trusted proxy saw
    assert client_address(forged_then_real, 2) == "203.0.113.7"  # CDN then load balancer
    too_short = make_mocked_request("GET", "/", headers={"X-Forwarded-For": "203.0.113.7"})
    assert client_address(too_short, 2) != "203.0.113.7"  # fewer entries than proxies: not trusted


async def test_the_sqlite_expiry_sweeps_read_by_index(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "connector.db")
    try:
        db = store._db
        for table, index in (("oauth_states", "oauth_states_by_expiry"), ("counters", "counters_by_expiry")):
            cursor = await db.execute(f"EXPLAIN QUERY PLAN DELETE FROM {table} WHERE expires_us <= ?", (0,))
            plan = " ".join(str(tuple(row)) for row in await cursor.fetchall())
            assert f"USING COVERING INDEX {index}" in plan or f"USING INDEX {index}" in plan, plan
    finally:
        await store.close()


async def test_before_the_code_the_card_shows_what_the_sign_in_would_connect(bot: BotHarness) -> None:
    """Talked into typing someone else's code, the creator would first see someone else's organisation
    or account on the card."""
    from sandbox.entra.directory import CAROL

    run = await start_setup(bot.personal(ALICE))
    page = await run.sign_in_xero(tenants=[NZ_TENANT_ID])
    assert page.code
    org = bot.sandboxes.xero.org(NZ_TENANT_ID).name
    card = await run.card_with("It would connect:")
    assert f"It would connect: {org}." in card.card_text
    await run.say(page.code)
    await run.card_with("Connected to Xero")

    page = await run.sign_in_dynamics(CAROL.upn, CAROL.password)  # not the Teams user: a code is needed
    assert page.code
    card = await run.card_with("It would connect:")
    assert f"It would connect: {CAROL.upn}." in card.card_text
