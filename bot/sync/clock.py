"""The one clock of the sync core: wall time through `Clock` (tests pass their own), waits through `Sleep`.

A leaf module (it imports nothing of bot.sync), so the HTTP layer, the limiter and the token keepers
use the same clock and sleep as the engine and the scheduler without an import cycle. `bot.sync.ports`
re-exports `Clock` and `SystemClock` with the other ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from bot.storage.base import utcnow

__all__ = ["Clock", "Now", "Sleep", "SystemClock", "asyncio_sleep", "utcnow"]

Now = Callable[[], datetime]  # a bare wall-clock function, where an object would be ceremony
Sleep = Callable[[float], Awaitable[None]]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return utcnow()


async def asyncio_sleep(seconds: float) -> None:
    """`asyncio.sleep`, looked up at call time (a default argument bound to it would not be)."""
    await asyncio.sleep(seconds)
