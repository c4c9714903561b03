"""Helpers over the store protocols that every layer uses (the sync core, the Teams side, the setup)."""

from __future__ import annotations

from collections.abc import Callable

from bot.errors import ConcurrencyError
from bot.storage.base import Connection, ConnectionStore


async def update_connection(
    store: ConnectionStore, connection_id: str, apply: Callable[[Connection], Connection], attempts: int = 5
) -> Connection | None:
    """Load, apply, save; on a lost optimistic write, load again and re-apply. None if it is gone.
    `apply` returning the connection unchanged writes nothing."""
    for _ in range(attempts):
        current = await store.get_connection(connection_id)
        if current is None:
            return None
        updated = apply(current)
        if updated == current:
            return current  # nothing to write
        try:
            return await store.save_connection(updated)
        except ConcurrencyError:
            continue
    raise ConcurrencyError(f"connection {connection_id} kept changing; gave up after {attempts} tries")
