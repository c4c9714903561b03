"""The card book: which cards show which run, and claims that let exactly one process report a run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.storage.base import Store
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore
from bot.teams.runcards import PENDING_FOR, CardRef, RunCardBook


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        opened: Store = await SqliteStore.open(tmp_path / "store.db")
    else:
        opened = await RedisStore.open(request.getfixturevalue("redis_url"))
    yield opened
    await opened.close()


def card(n: int) -> CardRef:
    return CardRef(conversation_key="msteams:a:1", activity_id=f"act-{n}")


async def test_a_now_card_is_taken_over_by_the_run_that_starts(store: Store) -> None:
    book = RunCardBook(store)
    await book.add_pending("c1", card(1))
    assert await book.is_pending("c1", card(1))
    claim = await book.claim_start("c1", "run-1")
    assert claim.claimed
    assert claim.cards == (card(1),)
    assert not await book.is_pending("c1", card(1))
    # The next run does not take it again.
    assert (await book.claim_start("c1", "run-2")).cards == ()
    assert await book.cards("c1", "run-1") == (card(1),)


async def test_start_and_finish_are_claimed_once(store: Store) -> None:
    book = RunCardBook(store)
    assert (await book.claim_start("c1", "r")).claimed
    assert not (await book.claim_start("c1", "r")).claimed
    assert (await book.claim_finish("c1", "r")).claimed
    assert not (await book.claim_finish("c1", "r")).claimed
    # A run whose start nobody saw can still be finished, and then not started.
    assert (await book.claim_finish("c1", "quick")).claimed
    assert not (await book.claim_start("c1", "quick")).claimed


async def test_concurrent_claimers_in_two_processes_agree_on_one_winner(store: Store) -> None:
    books = [RunCardBook(store) for _ in range(6)]  # six "processes" sharing the store
    for run in range(5):
        claims = await asyncio.gather(*(b.claim_finish("c1", f"run-{run}") for b in books))
        assert sum(c.claimed for c in claims) == 1
    # Even for the very first write of the document (no eTag to compare yet).
    claims = await asyncio.gather(*(b.claim_start("fresh", "r") for b in books))
    assert sum(c.claimed for c in claims) == 1


async def test_binding_a_card_after_the_end_says_so(store: Store) -> None:
    book = RunCardBook(store)
    await book.add_pending("c1", card(1))
    await book.claim_start("c1", "other")  # some other run took the pending card meanwhile
    assert (await book.claim_finish("c1", "joined")).claimed
    entry = await book.bind("c1", "joined", card(2))
    assert entry.finished
    assert card(2) in entry.cards


async def test_a_refused_run_takes_its_card_back_unless_a_run_has_it(store: Store) -> None:
    book = RunCardBook(store)
    await book.add_pending("c1", card(1))
    assert await book.drop_pending("c1", card(1))
    await book.add_pending("c1", card(2))
    await book.claim_start("c1", "r")
    assert not await book.drop_pending("c1", card(2))


async def test_an_old_now_card_is_not_taken_over(store: Store) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    book = RunCardBook(store, clock=lambda: now[0])
    await book.add_pending("c1", card(1))
    now[0] += PENDING_FOR + timedelta(seconds=1)
    assert (await book.claim_start("c1", "r")).cards == ()


async def test_alerts_are_not_repeated_within_the_quiet_period(store: Store) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    book = RunCardBook(store, clock=lambda: now[0])
    quiet = timedelta(minutes=10)
    assert await book.claim_alert("c1", "xero_reconnect", quiet)
    assert not await book.claim_alert("c1", "xero_reconnect", quiet)
    assert await book.claim_alert("c1", "repeated_failures", quiet)
    now[0] += quiet
    assert await book.claim_alert("c1", "xero_reconnect", quiet)


async def test_the_book_keeps_the_recent_runs_and_the_xero_zone(store: Store) -> None:
    book = RunCardBook(store)
    for n in range(40):
        await book.claim_finish(
            "c1", f"run-{n}", xero_timezone="Pacific/Auckland" if n < 39 else "Europe/London"
        )
    assert await book.state("c1", "run-0") is None
    assert (await book.state("c1", "run-39")) is not None
    claim = await book.claim_finish("c1", "run-40", xero_timezone="Europe/London")
    assert claim.previous_xero_timezone == "Europe/London"
    await book.forget("c1")
    assert await book.state("c1", "run-40") is None
