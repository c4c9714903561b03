"""Work a turn starts but does not wait for (Teams wants an answer within seconds; a sync takes longer).

A turn answers at once ("Starting…", "Pausing…") and hands the slow part here; the result is posted or
the card updated proactively when it is done. Tasks are kept referenced (asyncio only keeps weak ones),
their failures are logged, and `close` lets them finish on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(self._guard(work, name), name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(work: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background task %s failed", name)

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self, within: float | None = None) -> bool:
        """Wait for the tasks running now (and any they start); False if `within` seconds passed first."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while self._tasks:
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        return True

    async def close(self, grace: float = 10.0) -> None:
        if not await self.drain(grace):
            log.warning("cancelling %d background task(s) at shutdown", len(self._tasks))
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
