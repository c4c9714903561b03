"""Contract: connections, tokens, OAuth state, conversation references, runs, fingerprints."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import ConcurrencyError
from bot.storage.base import ConnectionStatus, RunOutcome, Store, TokenKind
from tests.contract.backends import Backend
from tests.contract.records import make_connection, make_ref, make_run

# ---- connections -------------------------------------------------------------------------------


async def test_create_get_and_duplicate(store: Store) -> None:
    created = await store.create_connection(make_connection("c1", version=7))
    assert created.version == 1
    assert await store.get_connection("c1") == created
    assert await store.get_connection("missing") is None
    with pytest.raises(ConcurrencyError):
        await store.create_connection(make_connection("c1"))


async def test_save_bumps_version_and_rejects_stale(store: Store) -> None:
    v1 = await store.create_connection(make_connection("c1"))
    v2 = await store.save_connection(v1.model_copy(update={"status": ConnectionStatus.PAUSED}))
    assert v2.version == 2
    loaded = await store.get_connection("c1")
    assert loaded is not None
    assert loaded.status == ConnectionStatus.PAUSED
    assert loaded.version == 2
    with pytest.raises(ConcurrencyError):
        await store.save_connection(v1.model_copy(update={"name": "stale"}))
    assert (await store.get_connection("c1")) == v2
    with pytest.raises(ConcurrencyError):
        await store.save_connection(make_connection("never-created", version=1))


async def test_concurrent_saves_exactly_one_wins(backend: Backend) -> None:
    first, second = await backend.open(), await backend.open()
    v1 = await first.create_connection(make_connection("c1"))
    edits = [v1.model_copy(update={"name": f"edit {i}"}) for i in range(10)]
    results = await asyncio.gather(
        *[(first if i % 2 else second).save_connection(e) for i, e in enumerate(edits)],
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, ConcurrencyError) for r in results if isinstance(r, BaseException))
    assert await first.get_connection("c1") == winners[0]


async def test_list_by_conversation_oldest_first(store: Store) -> None:
    await store.create_connection(make_connection("late", "conv-a", minutes=30))
    await store.create_connection(make_connection("early", "conv-a", minutes=1))
    await store.create_connection(make_connection("other", "conv-b", minutes=10))
    assert [c.id for c in await store.list_connections("conv-a")] == ["early", "late"]
    assert [c.id for c in await store.list_connections("conv-b")] == ["other"]
    assert [c.id for c in await store.list_connections()] == ["early", "other", "late"]
    assert await store.list_connections("nobody") == []


async def test_save_moves_between_conversations(store: Store) -> None:
    c = await store.create_connection(make_connection("c1", "conv-a"))
    await store.save_connection(c.model_copy(update={"conversation_key": "conv-b"}))
    assert await store.list_connections("conv-a") == []
    assert [x.id for x in await store.list_connections("conv-b")] == ["c1"]


async def test_delete_connection_and_what_it_kept(store: Store) -> None:
    await store.create_connection(make_connection("c1", "conv-a"))
    await store.create_connection(make_connection("c2", "conv-a", minutes=1))
    await store.put_tokens("c1", TokenKind.XERO, b"blob")
    await store.save_run(make_run("r1", "c1"))
    await store.put_fingerprints("c1", "accounts", {"a": "h"})
    await store.schedule("c1", make_run("x").started_at)
    await store.delete_connection("c1")
    assert await store.get_connection("c1") is None
    assert [c.id for c in await store.list_connections("conv-a")] == ["c2"]
    assert [c.id for c in await store.list_connections()] == ["c2"]
    assert await store.get_tokens("c1", TokenKind.XERO) is None
    assert await store.list_runs("c1") == []
    assert await store.get_run("r1") is None
    assert await store.get_fingerprints("c1", "accounts") == {}
    assert await store.get_due("c1") is None
    await store.delete_connection("c1")  # deleting twice is harmless


# ---- tokens ------------------------------------------------------------------------------------


async def test_tokens(store: Store) -> None:
    blob = bytes(range(256))  # any bytes survive, not only text
    await store.put_tokens("c1", TokenKind.XERO, blob)
    await store.put_tokens("c1", TokenKind.DYNAMICS, b"dyn")
    await store.put_tokens("c2", TokenKind.XERO, b"x2")
    assert await store.get_tokens("c1", TokenKind.XERO) == blob
    await store.put_tokens("c1", TokenKind.XERO, b"newer")
    assert await store.get_tokens("c1", TokenKind.XERO) == b"newer"
    assert sorted(await store.all_token_blobs()) == [
        ("c1", TokenKind.DYNAMICS, b"dyn"),
        ("c1", TokenKind.XERO, b"newer"),
        ("c2", TokenKind.XERO, b"x2"),
    ]
    await store.delete_tokens("c1", TokenKind.XERO)
    assert await store.get_tokens("c1", TokenKind.XERO) is None
    assert await store.get_tokens("c1", TokenKind.DYNAMICS) == b"dyn"
    await store.delete_tokens("c2")
    assert await store.get_tokens("c2", TokenKind.XERO) is None
    assert await store.all_token_blobs() == [("c1", TokenKind.DYNAMICS, b"dyn")]


# ---- OAuth state -------------------------------------------------------------------------------


async def test_state_is_single_use(store: Store) -> None:
    await store.put_state("s1", {"flow": "xero", "user": "u1"}, ttl_seconds=60)
    assert await store.peek_state("s1") == {"flow": "xero", "user": "u1"}
    assert await store.peek_state("s1") == {"flow": "xero", "user": "u1"}
    assert await store.take_state("s1") == {"flow": "xero", "user": "u1"}
    assert await store.take_state("s1") is None
    assert await store.peek_state("s1") is None
    assert await store.take_state("never") is None


async def test_state_taken_once_under_concurrency(backend: Backend) -> None:
    stores = [await backend.open(), await backend.open()]
    await stores[0].put_state("s1", {"n": 1}, ttl_seconds=60)
    results = await asyncio.gather(*[stores[i % 2].take_state("s1") for i in range(20)])
    assert [r for r in results if r is not None] == [{"n": 1}]


async def test_state_expires(store: Store) -> None:
    await store.put_state("short", {"n": 1}, ttl_seconds=0.2)
    await store.put_state("long", {"n": 2}, ttl_seconds=60)
    await asyncio.sleep(0.3)
    assert await store.peek_state("short") is None
    assert await store.take_state("short") is None
    assert await store.take_state("long") == {"n": 2}


# ---- conversation references -------------------------------------------------------------------


async def test_references(store: Store) -> None:
    ref = make_ref("msteams:19:abc")
    await store.save_reference(ref)
    assert await store.get_reference("msteams:19:abc") == ref
    assert await store.get_reference("msteams:other") is None
    await store.mark_removed("msteams:19:abc")
    removed = await store.get_reference("msteams:19:abc")
    assert removed is not None
    assert removed.removed
    # The reference itself is kept as it was (empty lists and objects included).
    assert removed.reference == ref.reference
    await store.mark_removed("msteams:unknown")
    assert await store.get_reference("msteams:unknown") is None
    await store.save_reference(ref)  # the bot was added back
    again = await store.get_reference("msteams:19:abc")
    assert again is not None
    assert not again.removed


# ---- runs --------------------------------------------------------------------------------------


async def test_runs_newest_first_with_limit_and_replace(store: Store) -> None:
    for i in range(5):
        await store.save_run(make_run(f"r{i}", minutes=i))
    await store.save_run(make_run("other", "c2"))
    assert [r.id for r in await store.list_runs("c1")] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.id for r in await store.list_runs("c1", limit=2)] == ["r4", "r3"]
    assert await store.list_runs("c1", limit=0) == []
    await store.save_run(make_run("r4", minutes=4, outcome=RunOutcome.FAILED))
    runs = await store.list_runs("c1")
    assert len(runs) == 5
    assert runs[0].outcome == RunOutcome.FAILED
    got = await store.get_run("r2")
    assert got == make_run("r2", minutes=2)
    assert await store.get_run("nope") is None
    assert [r.id for r in await store.list_runs("c2")] == ["other"]


async def test_runs_capped_at_200_per_connection(store: Store) -> None:
    for i in range(205):
        await store.save_run(make_run(f"r{i:03d}", minutes=i))
    await store.save_run(make_run("elsewhere", "c2"))
    kept = await store.list_runs("c1", limit=1000)
    assert len(kept) == 200
    assert kept[0].id == "r204"
    assert kept[-1].id == "r005"
    for gone in range(5):
        assert await store.get_run(f"r{gone:03d}") is None
    assert await store.get_run("elsewhere") is not None


# ---- fingerprints ------------------------------------------------------------------------------


async def test_fingerprints_replace(store: Store) -> None:
    assert await store.get_fingerprints("c1", "accounts") == {}
    await store.put_fingerprints("c1", "accounts", {"a1": "h1", "a2": "h2"})
    await store.put_fingerprints("c1", "tax_rates", {"t1": "h"})
    await store.put_fingerprints("c2", "accounts", {"z": "h"})
    assert await store.get_fingerprints("c1", "accounts") == {"a1": "h1", "a2": "h2"}
    await store.put_fingerprints("c1", "accounts", {"a2": "h2b", "a3": "h3"})
    assert await store.get_fingerprints("c1", "accounts") == {"a2": "h2b", "a3": "h3"}
    await store.put_fingerprints("c1", "accounts", {})
    assert await store.get_fingerprints("c1", "accounts") == {}
    await store.put_fingerprints("c1", "accounts", {"a": "h"})
    await store.delete_fingerprints("c1")
    assert await store.get_fingerprints("c1", "accounts") == {}
    assert await store.get_fingerprints("c1", "tax_rates") == {}
    assert await store.get_fingerprints("c2", "accounts") == {"z": "h"}
