"""What the product keeps: protocols and records (`base`), two backends, and `open_store` to pick one.

The backends and `open_store` are imported on first use, so code that only needs the records and
protocols (the sync core, cards) does not load the Redis and SQLite clients.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bot.storage.base import (
    Claim,
    Connection,
    ConnectionStatus,
    ConversationRef,
    Document,
    EntityCounts,
    NotifyMode,
    RecordFailure,
    RunEvent,
    RunEventKind,
    RunOutcome,
    RunRecord,
    Store,
    TokenKind,
)

if TYPE_CHECKING:
    from bot.storage.factory import open_store
    from bot.storage.redis import RedisStore
    from bot.storage.sqlite import SqliteStore

_LAZY = {
    "open_store": "bot.storage.factory",
    "RedisStore": "bot.storage.redis",
    "SqliteStore": "bot.storage.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Claim",
    "Connection",
    "ConnectionStatus",
    "ConversationRef",
    "Document",
    "EntityCounts",
    "NotifyMode",
    "RecordFailure",
    "RedisStore",
    "RunEvent",
    "RunEventKind",
    "RunOutcome",
    "RunRecord",
    "SqliteStore",
    "Store",
    "TokenKind",
    "open_store",
]
