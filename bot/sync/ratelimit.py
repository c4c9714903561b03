"""Xero's limits per tenant, kept on our side so runs pace themselves instead of collecting 429s.

Xero allows per tenant and app: 5 calls in flight, 60 calls in any minute, 5,000 a day (1,000 on the
Starter tier). `TenantLimiter` keeps, per tenant:

- a semaphore of `concurrency` slots;
- a sliding-window log of call start times: at most `per_minute` starts in any `window` seconds.
  Default 55, not 60: headroom for clock skew and for calls another process made for the same tenant;
- a pause: when a 429 arrives, `pause(tenant, retry_after)` holds every caller of that tenant;
- the day budget last reported in `X-DayLimit-Remaining` (counted down locally between responses):
  when only `day_reserve` calls remain, `slot()` refuses with `RateLimited(problem="day")` so the
  connection keeps a reserve for the user's on-demand runs. The figure is trusted for
  `day_stale_after` seconds; after that one call goes through and brings a fresh one.

Why not aiolimiter: its leaky bucket of capacity C draining C per minute admits up to 2C calls in a
60 s window, which is not Xero's rule; a timestamp log is exact, is a few lines, and takes an
injectable clock, so the tests run in virtual time. That log, `SlidingWindows`, is the one limiter of
the product: the proactive sender (bot.teams.proactive) keeps Teams' per-conversation windows with it.

The limiter is per process. Two processes serving one tenant at once is rare (the scheduler leases a
connection to one process); when it happens, Xero's 429 + Retry-After is the backstop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from bot.errors import Problem, RateLimited
from bot.sync.clock import Sleep, asyncio_sleep

MonotonicClock = Callable[[], float]  # seconds on a clock that never goes back (time.monotonic)


@dataclass(frozen=True)
class RateWindow:
    """At most `requests` starts in any `seconds`-long interval."""

    requests: int
    seconds: float


class SlidingWindows:
    """A log of start times that keeps every window at once (exact, where a leaky bucket lets almost
    twice a window's allowance through at the start). Not a lock: callers serialise `delay`/`record`."""

    def __init__(self, windows: Sequence[RateWindow], clock: MonotonicClock) -> None:
        self._windows = tuple(windows)
        self._clock = clock
        self._sent: deque[float] = deque(maxlen=max((w.requests for w in windows), default=1))

    def delay(self) -> float:
        """How long to wait before the next start is allowed (0 or less: now)."""
        now = self._clock()
        wait = 0.0
        sent = self._sent
        for window in self._windows:
            if len(sent) >= window.requests:
                # The start that would fall out of this window must be older than `seconds`.
                oldest = sent[len(sent) - window.requests]
                wait = max(wait, oldest + window.seconds - now)
        return wait

    def record(self) -> None:
        self._sent.append(self._clock())

    @property
    def last(self) -> float | None:
        return self._sent[-1] if self._sent else None

    def started_within(self, seconds: float) -> int:
        """Starts in the last `seconds` (as far back as the log goes)."""
        since = self._clock() - seconds
        return sum(1 for moment in self._sent if moment > since)


@dataclass
class _TenantState:
    semaphore: asyncio.Semaphore
    starts: SlidingWindows
    gate: asyncio.Lock = field(default_factory=asyncio.Lock)
    paused_until: float = 0.0
    pause_problem: str = ""
    day_remaining: int | None = None
    day_seen_at: float = 0.0
    minute_remaining: int | None = None


class TenantLimiter:
    def __init__(
        self,
        *,
        per_minute: int = 55,
        concurrency: int = 5,
        window: float = 60.0,
        day_reserve: int = 100,
        day_stale_after: float = 3600.0,
        max_wait: float = 60.0,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio_sleep,
    ) -> None:
        if per_minute < 1 or concurrency < 1 or window <= 0:
            raise ValueError("per_minute and concurrency must be >= 1, window > 0")
        self.per_minute = per_minute
        self.concurrency = concurrency
        self.window = window
        self.day_reserve = day_reserve
        self.day_stale_after = day_stale_after
        self.max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._tenants: dict[str, _TenantState] = {}

    def _state(self, tenant_id: str) -> _TenantState:
        state = self._tenants.get(tenant_id)
        if state is None:
            state = _TenantState(
                semaphore=asyncio.Semaphore(self.concurrency),
                starts=SlidingWindows((RateWindow(self.per_minute, self.window),), self._clock),
            )
            self._tenants[tenant_id] = state
        return state

    @asynccontextmanager
    async def slot(self, tenant_id: str) -> AsyncIterator[None]:
        """Hold one of the tenant's call slots for the duration of one HTTP call.

        Waits for a pause to end, a free concurrency slot and room in the minute window (in arrival
        order). Raises RateLimited at once, rather than waiting, when the day budget is down to the
        reserve (problem "day") or the tenant is paused for longer than `max_wait` (a day-limit 429)."""
        state = self._state(tenant_id)
        self._check_day(state)
        self._check_pause(state)
        async with state.semaphore:
            async with state.gate:
                await self._wait_turn(state)
                self._check_day(state)
                state.starts.record()
                if state.day_remaining is not None:
                    state.day_remaining -= 1
            yield

    def pause(self, tenant_id: str, seconds: float, problem: str = "") -> None:
        """Hold every caller of this tenant for `seconds` (a 429's Retry-After). Never shortens a pause."""
        state = self._state(tenant_id)
        until = self._clock() + max(0.0, seconds)
        if until > state.paused_until:
            state.paused_until = until
            state.pause_problem = problem

    def paused_for(self, tenant_id: str) -> float:
        """Seconds left of the tenant's pause (0 if none)."""
        state = self._tenants.get(tenant_id)
        return max(0.0, state.paused_until - self._clock()) if state else 0.0

    def observe(self, tenant_id: str, headers: Mapping[str, str]) -> None:
        """Read Xero's X-DayLimit-Remaining / X-MinLimit-Remaining from a response."""
        state = self._state(tenant_id)
        day = _int_header(headers, "X-DayLimit-Remaining")
        if day is not None:
            state.day_remaining = day
            state.day_seen_at = self._clock()
        minute = _int_header(headers, "X-MinLimit-Remaining")
        if minute is not None:
            state.minute_remaining = minute

    def day_remaining(self, tenant_id: str) -> int | None:
        """The day budget as last reported by Xero (minus calls started since), None if unknown."""
        state = self._tenants.get(tenant_id)
        return state.day_remaining if state else None

    def minute_remaining(self, tenant_id: str) -> int | None:
        state = self._tenants.get(tenant_id)
        return state.minute_remaining if state else None

    def in_window(self, tenant_id: str) -> int:
        """Calls started for this tenant in the current window (for tests and the bench)."""
        state = self._tenants.get(tenant_id)
        if state is None:
            return 0
        return state.starts.started_within(self.window)

    def _check_day(self, state: _TenantState) -> None:
        if state.day_remaining is None:
            return
        age = self._clock() - state.day_seen_at
        if age >= self.day_stale_after:
            return
        if state.day_remaining <= self.day_reserve:
            raise RateLimited(
                Problem.DAY_BUDGET,
                retry_after=self.day_stale_after - age,
                problem="day",
                provider="xero",
                where=f"{max(state.day_remaining, 0)} calls left",
            )

    def _check_pause(self, state: _TenantState) -> None:
        left = state.paused_until - self._clock()
        if left > self.max_wait:
            raise RateLimited(
                Problem.PAUSED,
                retry_after=left,
                problem=state.pause_problem,
                provider="xero",
                status=429,
                where=state.pause_problem or "unknown",
            )

    async def _wait_turn(self, state: _TenantState) -> None:
        while True:
            wait = max(state.paused_until - self._clock(), state.starts.delay())
            if wait <= 0:
                return
            await self._sleep(wait)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None
