"""The per-record ledger behind `sync why`: last write, last failure, and what clears a failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.storage.sqlite import SqliteStore
from bot.sync.ledger import forget_ledgers, load_ledger, record_writes

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


async def test_a_later_good_write_clears_the_failure(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "s.db")
    try:
        await record_writes(
            store, "c1", "accounts", "run-1", T0, written={"a": "created", "b": "created"}, failed={}
        )
        await record_writes(
            store, "c1", "accounts", "run-2", T0 + timedelta(hours=1), written={}, failed={"b": "too long"}
        )
        ledger = await load_ledger(store, "c1", "accounts")
        assert ledger.written["a"].run_id == "run-1"
        assert ledger.written["b"].detail == "created"
        assert (ledger.failed["b"].run_id, ledger.failed["b"].detail) == ("run-2", "too long")
        await record_writes(
            store, "c1", "accounts", "run-3", T0 + timedelta(hours=2), written={"b": "updated"}, failed={}
        )
        ledger = await load_ledger(store, "c1", "accounts")
        assert "b" not in ledger.failed
        assert (ledger.written["b"].run_id, ledger.written["b"].at) == ("run-3", T0 + timedelta(hours=2))
        # Kept per connection and entity.
        assert (await load_ledger(store, "c1", "tax_rates")).written == {}
        assert (await load_ledger(store, "c2", "accounts")).written == {}
        await forget_ledgers(store, "c1", ["accounts"])
        assert (await load_ledger(store, "c1", "accounts")).written == {}
    finally:
        await store.close()
