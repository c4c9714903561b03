"""Service protection limits, per user: requests and execution time in a sliding window, and concurrency.

Defaults are Dataverse's (6,000 requests and 1,200,000 ms per 300 s, 52 concurrent); tests set small
ones with `set_limits`. A refused request still counts, so a client that keeps sending while throttled
keeps being throttled, as the real service does. A `$batch` or a bulk action counts as one request.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from sandbox.clock import Clock
from sandbox.dataverse.errors import DataverseError


@dataclass(frozen=True)
class LimitSettings:
    max_requests: int = 6000
    window_seconds: float = 300.0
    max_execution_ms: int = 1_200_000
    max_concurrent: int = 52
    dop_hint: int = 4  # what `x-ms-dop-hint` recommends as parallelism


@dataclass
class _Usage:
    requests: deque[float] = field(default_factory=deque)
    executions: deque[tuple[float, float]] = field(default_factory=deque)  # (finished at, milliseconds)
    in_flight: int = 0


class ServiceProtection:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.settings = LimitSettings()
        self._usage: dict[str, _Usage] = {}

    def configure(self, **changes: Any) -> LimitSettings:
        self.settings = replace(self.settings, **changes)
        return self.settings

    def reset(self) -> None:
        self.settings = LimitSettings()
        self._usage.clear()

    def admit(self, user_key: str) -> DataverseError | None:
        """Count a request; return the 429 to send instead of serving it, if a limit is exceeded."""
        now = self.clock.time()
        usage = self._usage.setdefault(user_key, _Usage())
        self._prune(usage, now)
        s = self.settings
        usage.requests.append(now)
        if len(usage.requests) > s.max_requests:
            oldest = usage.requests[len(usage.requests) - s.max_requests - 1]
            return _throttled(
                "0x80072322",
                f"Number of requests exceeded the limit of {s.max_requests} over time window of "
                f"{s.window_seconds:g} seconds.",
                oldest + s.window_seconds - now,
            )
        spent = sum(ms for _, ms in usage.executions)
        if spent > s.max_execution_ms:
            oldest_finish = usage.executions[0][0]
            return _throttled(
                "0x80072321",
                f"Combined execution time of incoming requests exceeded limit of {s.max_execution_ms:,} "
                f"milliseconds over time window of {s.window_seconds:g} seconds. Decrease number of concurrent "
                "requests or reduce the duration of requests and try again later.",
                oldest_finish + s.window_seconds - now,
            )
        if usage.in_flight >= s.max_concurrent:
            return _throttled(
                "0x80072326", f"Number of concurrent requests exceeded the limit of {s.max_concurrent}.", 1.0
            )
        usage.in_flight += 1
        return None

    def finish(self, user_key: str, elapsed_ms: float) -> None:
        usage = self._usage.setdefault(user_key, _Usage())
        usage.in_flight = max(0, usage.in_flight - 1)
        usage.executions.append((self.clock.time(), elapsed_ms))

    def remaining(self, user_key: str) -> tuple[int, int]:
        """What the `x-ms-ratelimit-*-remaining-xrm-requests` headers report: requests and milliseconds left."""
        usage = self._usage.get(user_key, _Usage())
        spent = sum(ms for _, ms in usage.executions)
        return (
            max(0, self.settings.max_requests - len(usage.requests)),
            max(0, int(self.settings.max_execution_ms - spent)),
        )

    def _prune(self, usage: _Usage, now: float) -> None:
        start = now - self.settings.window_seconds
        while usage.requests and usage.requests[0] <= start:
            usage.requests.popleft()
        while usage.executions and usage.executions[0][0] <= start:
            usage.executions.popleft()


def _throttled(code: str, message: str, wait: float) -> DataverseError:
    retry_after = max(1, math.ceil(wait))
    return DataverseError(429, code, message, headers={"Retry-After": str(retry_after)})
