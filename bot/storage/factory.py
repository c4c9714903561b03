"""Which store a deployment uses: Redis (standalone or cluster) when REDIS_URL is set (several
processes), else SQLite."""

from __future__ import annotations

from bot.config import Settings
from bot.errors import StoreError
from bot.storage.base import Store
from bot.storage.redis import RedisStore
from bot.storage.redis_base import PoolSettings
from bot.storage.sqlite import SqliteStore

SQLITE_FILE = "connector.db"


async def open_store(settings: Settings) -> Store:
    """Open the configured backend. Raises StoreError if it cannot be reached or created."""
    if settings.redis_url:
        pool = PoolSettings(settings.redis_max_connections, settings.redis_pool_timeout_seconds)
        return await RedisStore.open(settings.redis_url, pool=pool, shards=settings.redis_due_shards)
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"DATA_DIR: cannot create {settings.data_dir}: {exc.strerror}") from exc
    return await SqliteStore.open(settings.data_dir / SQLITE_FILE)
