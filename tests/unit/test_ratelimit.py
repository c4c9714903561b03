"""TenantLimiter in virtual time: the minute window, concurrency, pauses and the day budget."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import RateLimited
from bot.sync.ratelimit import TenantLimiter


class VirtualTime:
    """A clock that only moves when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def limiter(vt: VirtualTime, **kw: float) -> TenantLimiter:
    return TenantLimiter(clock=vt.clock, sleep=vt.sleep, **kw)  # type: ignore[arg-type]


async def test_burst_up_to_the_limit_then_waits_for_the_oldest_to_leave_the_window() -> None:
    vt = VirtualTime()
    lim = limiter(vt, per_minute=55)
    for _ in range(55):
        async with lim.slot("t"):
            pass
    assert vt.sleeps == []
    async with lim.slot("t"):
        pass
    assert vt.sleeps == [pytest.approx(60.0)]
    assert lim.in_window("t") == 1  # the 55 of the first burst have left the window


async def test_no_sixty_second_window_ever_holds_more_than_the_limit() -> None:
    vt = VirtualTime()
    lim = limiter(vt, per_minute=10)
    starts: list[float] = []
    for i in range(100):
        async with lim.slot("t"):
            starts.append(vt.now)
        vt.now += 0.7 if i % 3 else 2.3  # uneven work between calls
    for i, start in enumerate(starts):
        in_window = [s for s in starts[i:] if s < start + 60.0]
        assert len(in_window) <= 10
    # ...and it does not pace slower than it must: 100 calls at 10/min take about 9 windows.
    assert starts[-1] - starts[0] < 10 * 60


async def test_tenants_do_not_share_windows() -> None:
    vt = VirtualTime()
    lim = limiter(vt, per_minute=2)
    for tenant in ("a", "b", "c"):
        for _ in range(2):
            async with lim.slot(tenant):
                pass
    assert vt.sleeps == []


async def test_at_most_five_in_flight_per_tenant() -> None:
    lim = TenantLimiter(per_minute=1000, concurrency=5)
    in_flight = 0
    peak = 0
    release = asyncio.Event()

    async def call(tenant: str) -> None:
        nonlocal in_flight, peak
        async with lim.slot(tenant):
            in_flight += 1
            peak = max(peak, in_flight)
            await release.wait()
            in_flight -= 1

    tasks = [asyncio.create_task(call("t")) for _ in range(12)]
    other = asyncio.create_task(call("other"))
    await asyncio.sleep(0.05)
    assert in_flight == 6  # five for "t", one for "other"
    release.set()
    await asyncio.gather(*tasks, other)
    assert peak == 6


async def test_pause_holds_every_caller_of_the_tenant_only() -> None:
    vt = VirtualTime()
    lim = limiter(vt)
    lim.pause("t", 7, problem="minute")
    lim.pause("t", 3)  # a shorter pause never shortens the current one
    assert lim.paused_for("t") == pytest.approx(7)
    async with lim.slot("other"):
        pass
    assert vt.sleeps == []
    async with lim.slot("t"):
        pass
    assert vt.sleeps == [pytest.approx(7)]
    assert lim.paused_for("t") == 0


async def test_a_pause_longer_than_max_wait_fails_fast() -> None:
    vt = VirtualTime()
    lim = limiter(vt, max_wait=60)
    lim.pause("t", 18 * 3600, problem="day")
    with pytest.raises(RateLimited) as info:
        async with lim.slot("t"):
            pass
    assert info.value.problem == "day"
    assert info.value.retry_after == pytest.approx(18 * 3600)
    assert vt.sleeps == []


async def test_day_budget_refuses_when_down_to_the_reserve() -> None:
    vt = VirtualTime()
    lim = limiter(vt, day_reserve=10, day_stale_after=3600)
    assert lim.day_remaining("t") is None
    lim.observe("t", {"X-DayLimit-Remaining": "12", "X-MinLimit-Remaining": "59"})
    assert lim.day_remaining("t") == 12
    assert lim.minute_remaining("t") == 59
    for _ in range(2):
        async with lim.slot("t"):
            pass
    assert lim.day_remaining("t") == 10  # counted down locally between responses
    with pytest.raises(RateLimited) as info:
        async with lim.slot("t"):
            pass
    assert info.value.problem == "day"
    assert 0 < info.value.retry_after <= 3600
    # After an hour the figure is stale: one call goes through to fetch a fresh one.
    vt.now += 3600
    async with lim.slot("t"):
        pass
    lim.observe("t", {"X-DayLimit-Remaining": "4000"})
    async with lim.slot("t"):
        pass


def test_unreadable_headers_are_ignored() -> None:
    lim = TenantLimiter()
    lim.observe("t", {"X-DayLimit-Remaining": "lots"})
    assert lim.day_remaining("t") is None


def test_rejects_nonsense_configuration() -> None:
    with pytest.raises(ValueError, match="per_minute"):
        TenantLimiter(per_minute=0)
