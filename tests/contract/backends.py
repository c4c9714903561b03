"""A backend under test: opens store objects on one SQLite file, one Redis database or one Redis Cluster."""

from __future__ import annotations

import contextlib
from pathlib import Path

from bot.storage.base import Store
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore


class Backend:
    """Opens store objects on one backend: several at once behave like several processes."""

    def __init__(self, name: str, *, path: Path | None = None, url: str = "") -> None:
        self.name = name
        self.path = path
        self.url = url
        self.opened: list[Store] = []

    async def open(self) -> Store:
        store: Store
        if self.name == "sqlite":
            assert self.path is not None
            store = await SqliteStore.open(self.path)
        else:
            store = await RedisStore.open(self.url)
        self.opened.append(store)
        return store

    async def close_all(self) -> None:
        for store in self.opened:
            # Some tests close their stores themselves.
            with contextlib.suppress(Exception):
                await store.close()
