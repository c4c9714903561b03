"""One lock per connection and purpose, held in this process and across processes.

The Xero token keeper (`bot.sync.xero_tokens`) and the Dynamics sign-in (`bot.sync.dynamics_auth`) each
must never let two refreshes of one connection's tokens race (each would store a different rotated
refresh token). Both take a `ConnectionLock`: an `asyncio.Lock` per connection (coroutines of this
process queue on it, in order, without polling the store) and then the store's lock with a TTL (other
processes; the TTL frees it when a process dies holding it). Waiting for the store lock polls with a
doubling delay up to half a second and gives up after `wait` seconds with a `TransientProviderError`.

What used to differ between the two copies, and is now the same for both:
- the in-process locks are weakly held, so one per connection ever seen does not pile up;
- a failed release is logged, never raised: the TTL frees the lock, and raising from `finally` would
  replace the caller's result (a token already stored) with a storage error;
- the wait between polls goes through the injectable `Sleep`;
- the owner names this process and this object (`host:pid:id`), so a stuck lock says whose it is.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bot.errors import Problem, StoreError, TransientProviderError
from bot.storage.base import LockStore
from bot.sync.clock import Sleep, asyncio_sleep

log = logging.getLogger(__name__)

FIRST_POLL = 0.02
LONGEST_POLL = 0.5
# The store lock names of each connection's token sets (+ connection id). Every writer of a token set
# holds its lock: the refreshes, a reconnect, a disconnect, and `python -m bot.rotate_keys`.
XERO_TOKENS_LOCK = "xero-token-refresh:"
DYNAMICS_TOKENS_LOCK = "dynamics-token:"


def process_owner() -> str:
    """A lock owner name unique to this process and call (two holders in one process act as two processes)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class ConnectionLock:
    def __init__(
        self,
        store: LockStore,
        prefix: str,
        *,
        provider: str,
        ttl: float = 60.0,
        wait: float = 30.0,
        sleep: Sleep = asyncio_sleep,
    ) -> None:
        """`prefix` + connection id names the store lock (keep it stable: processes of the previous
        release take the same name during a rolling deploy). Past `wait` it raises TransientProviderError
        (`Problem.TOKEN_LOCK_BUSY`)."""
        self._store = store
        self._prefix = prefix
        self._provider = provider
        self._ttl = ttl
        self._wait = wait
        self._sleep = sleep
        self.owner = process_owner()
        self._local: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def name(self, connection_id: str) -> str:
        return self._prefix + connection_id

    @asynccontextmanager
    async def hold(self, connection_id: str) -> AsyncIterator[None]:
        """Both locks of one connection, for the block's duration."""
        local = self._local.get(connection_id)
        if local is None:
            local = self._local[connection_id] = asyncio.Lock()
        async with local:
            await self._acquire(connection_id)
            try:
                yield
            finally:
                await self._release(connection_id)

    async def _acquire(self, connection_id: str) -> None:
        name = self.name(connection_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        delay = FIRST_POLL
        while not await self._store.acquire_lock(name, self.owner, self._ttl):
            if loop.time() >= deadline:
                raise TransientProviderError(Problem.TOKEN_LOCK_BUSY, provider=self._provider)
            await self._sleep(delay)
            delay = min(delay * 2, LONGEST_POLL)

    async def _release(self, connection_id: str) -> None:
        try:
            await self._store.release_lock(self.name(connection_id), self.owner)
        except StoreError:
            log.warning("could not release the lock %s; its TTL frees it", self.name(connection_id))
