"""The pieces of proactive delivery that need no connector: the limiter, Retry-After, the delivery queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from bot.storage.sqlite import SqliteStore
from bot.teams.proactive import (
    TEAMS_WINDOWS,
    ConversationGone,
    ProactiveSender,
    RateWindow,
    SlidingWindows,
    http_status,
    retry_after,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(windows: tuple[RateWindow, ...], sends: int) -> list[float]:
    """Send as fast as the limiter allows; returns the send times."""
    clock = FakeClock()
    limiter = SlidingWindows(windows, clock)
    times: list[float] = []
    for _ in range(sends):
        clock.now += limiter.delay()
        assert limiter.delay() == 0
        limiter.record()
        times.append(clock.now)
    return times


def most_in_any(times: list[float], seconds: float) -> int:
    """The most sends in any half-open interval [t, t + seconds)."""
    return max(sum(1 for u in times if t <= u < t + seconds) for t in times)


def test_the_limiter_keeps_every_teams_window_over_any_interval() -> None:
    times = simulate(TEAMS_WINDOWS, 200)
    assert most_in_any(times, 1.0) <= 7
    assert most_in_any(times, 2.0) <= 8
    assert most_in_any(times, 30.0) <= 60
    # Not slower than it must be: 200 sends at 58 per 30 s take a little over 90 s.
    assert times[-1] < 110


def test_the_hour_window_holds_too() -> None:
    times = simulate((RateWindow(1800, 3600.0),), 1801)
    assert times[1799] == 0
    assert times[1800] == pytest.approx(3600.0)


def test_a_leaky_bucket_would_not_have_held_the_first_second() -> None:
    # Why our own limiter: the first window of sends is exactly the window's allowance, no more.
    times = simulate((RateWindow(6, 1.0),), 13)
    assert most_in_any(times, 1.0) == 6


class _Headers(dict[str, str]):
    pass


class _Response:
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.headers = _Headers(headers or {})


class _Error(Exception):
    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.response = _Response(status, headers)


def test_retry_after_in_seconds_as_a_date_or_absent() -> None:
    assert retry_after(_Error(429, {"Retry-After": "2.5"})) == 2.5
    now = datetime(2026, 1, 1, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after(_Error(429, {"Retry-After": later}), now) == pytest.approx(30)
    assert retry_after(_Error(429, {"Retry-After": "soon"})) is None
    assert retry_after(_Error(429)) is None
    assert retry_after(ValueError("no response")) is None
    assert http_status(_Error(412)) == 412
    assert http_status(ValueError()) is None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "store.db")
    yield opened
    await opened.close()


class _NoAdapter:
    async def continue_conversation(self, *_args: object) -> None:
        raise AssertionError("these tests send nothing")


async def test_queued_jobs_run_in_order_and_a_failure_does_not_stop_the_rest(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    sender = ProactiveSender(_NoAdapter(), store, "")
    done: list[int] = []

    def job(n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await asyncio.sleep(0.001 * (n % 3))
            if n == 5:
                raise RuntimeError("boom")
            if n == 7:
                raise ConversationGone("removed")
            done.append(n)

        return run

    with caplog.at_level(logging.INFO):
        for n in range(20):
            sender.enqueue("msteams:a", job(n))
        assert await sender.drain(5)
    assert done == [n for n in range(20) if n not in (5, 7)]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert sender.pending() == 0


async def test_a_newer_progress_update_replaces_one_still_waiting(store: SqliteStore) -> None:
    sender = ProactiveSender(_NoAdapter(), store, "")
    seen: list[str] = []
    gate = asyncio.Event()

    async def first() -> None:
        await gate.wait()
        seen.append("first")

    def update(label: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            seen.append(label)

        return run

    sender.enqueue("k", first)
    sender.enqueue("k", update("progress 1"), coalesce="progress:r1")
    sender.enqueue("k", update("other"))
    sender.enqueue("k", update("progress 2"), coalesce="progress:r1")
    sender.enqueue("k", update("result"), coalesce="progress:r1")
    gate.set()
    assert await sender.drain(5)
    # The latest state took the place of the first waiting update; the unrelated job kept its place.
    assert seen == ["first", "result", "other"]


async def test_conversations_do_not_wait_for_each_other(store: SqliteStore) -> None:
    sender = ProactiveSender(_NoAdapter(), store, "")
    blocked = asyncio.Event()
    seen: list[str] = []

    async def slow() -> None:
        await blocked.wait()
        seen.append("slow")

    async def quick() -> None:
        seen.append("quick")

    sender.enqueue("a", slow)
    sender.enqueue("b", quick)
    await asyncio.sleep(0.05)
    assert seen == ["quick"]
    blocked.set()
    assert await sender.drain(5)
    assert seen == ["quick", "slow"]


async def test_close_cancels_what_cannot_finish(store: SqliteStore) -> None:
    sender = ProactiveSender(_NoAdapter(), store, "")
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    sender.enqueue("a", forever)
    await started.wait()
    await sender.close(grace=0.05)
    assert sender.pending() == 0
