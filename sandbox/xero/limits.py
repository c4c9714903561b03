"""Xero's API limits: per tenant 5 concurrent, 60 a minute, 5,000 a day; per app 10,000 a minute.

Windows roll (a call stops counting 60 s or 24 h after it was made) and run on the sandbox clock, so a
test can use up the day and move the clock instead of waiting. Refused calls do not count.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass

from sandbox.clock import Clock

MINUTE = 60.0
DAY = 24 * 3600.0


@dataclass(frozen=True)
class Verdict:
    """`problem` is None when the call may go ahead (then `release` must be called when it ends)."""

    headers: dict[str, str]
    problem: str | None = None
    retry_after: int = 0


class RateLimiter:
    def __init__(self, clock: Clock, *, daily: int, minute: int, concurrent: int, app_minute: int) -> None:
        self.clock = clock
        self.daily, self.minute, self.concurrent, self.app_minute = daily, minute, concurrent, app_minute
        self.reset()

    def reset(self) -> None:
        self._day: dict[str, deque[float]] = defaultdict(deque)
        self._minute: dict[str, deque[float]] = defaultdict(deque)
        self._app: deque[float] = deque()
        self._in_flight: dict[str, int] = defaultdict(int)

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    @staticmethod
    def _wait(window: deque[float], now: float, span: float) -> int:
        return max(1, math.ceil(window[0] + span - now))

    def app_remaining(self) -> int:
        self._trim(self._app, self.clock.time(), MINUTE)
        return max(0, self.app_minute - len(self._app))

    def count_app_call(self) -> str:
        """Calls outside the Accounting API (GET /connections) only count against the app limit."""
        self._app.append(self.clock.time())
        return str(self.app_remaining())

    def _headers(self, tenant: str) -> dict[str, str]:
        return {
            "X-DayLimit-Remaining": str(max(0, self.daily - len(self._day[tenant]))),
            "X-MinLimit-Remaining": str(max(0, self.minute - len(self._minute[tenant]))),
            "X-AppMinLimit-Remaining": str(max(0, self.app_minute - len(self._app))),
        }

    def admit(self, tenant: str) -> Verdict:
        now = self.clock.time()
        day, minute = self._day[tenant], self._minute[tenant]
        self._trim(day, now, DAY)
        self._trim(minute, now, MINUTE)
        self._trim(self._app, now, MINUTE)
        # The longest wait is reported first: a client that honours Retry-After then never retries early.
        if len(day) >= self.daily:
            return Verdict(self._headers(tenant), "day", self._wait(day, now, DAY))
        if len(self._app) >= self.app_minute:
            return Verdict(self._headers(tenant), "appminute", self._wait(self._app, now, MINUTE))
        if len(minute) >= self.minute:
            return Verdict(self._headers(tenant), "minute", self._wait(minute, now, MINUTE))
        if self._in_flight[tenant] >= self.concurrent:
            return Verdict(self._headers(tenant), "concurrent", 1)
        day.append(now)
        minute.append(now)
        self._app.append(now)
        self._in_flight[tenant] += 1
        return Verdict(self._headers(tenant))

    def release(self, tenant: str) -> None:
        self._in_flight[tenant] -= 1
