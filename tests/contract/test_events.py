"""Contract: the run-event feed (append, read on from a cursor, tail, cap), on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.storage.base import RunEventKind, Store, utcnow
from tests.contract.backends import Backend

STARTED, FINISHED = RunEventKind.STARTED, RunEventKind.FINISHED


async def test_read_on_from_a_cursor(store: Store) -> None:
    assert await store.read_run_events() == ([], "")
    assert await store.run_events_tail() == ""
    before = utcnow()
    first = await store.append_run_event("c1", "r1", STARTED)
    await store.append_run_event("c2", "r2", STARTED)
    third = await store.append_run_event("c1", "r1", FINISHED)
    events, cursor = await store.read_run_events("", limit=10)
    assert [(e.connection_id, e.run_id, e.kind) for e in events] == [
        ("c1", "r1", STARTED),
        ("c2", "r2", STARTED),
        ("c1", "r1", FINISHED),
    ]
    assert events[0].cursor == first
    assert cursor == third == events[-1].cursor
    assert all(before - timedelta(seconds=5) < e.at < utcnow() + timedelta(seconds=5) for e in events)
    # Reading on from the last cursor: nothing new, and the cursor stays.
    assert await store.read_run_events(cursor) == ([], cursor)
    fourth = await store.append_run_event("c3", "r3", FINISHED)
    events, cursor = await store.read_run_events(cursor)
    assert [(e.run_id, e.cursor) for e in events] == [("r3", fourth)]
    assert await store.run_events_tail() == fourth == cursor


async def test_limit_pages_through_in_order(store: Store) -> None:
    for i in range(7):
        await store.append_run_event("c1", f"r{i}", FINISHED)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        events, cursor = await store.read_run_events(cursor, limit=3)
        if not events:
            break
        pages += 1
        seen += [e.run_id for e in events]
    assert seen == [f"r{i}" for i in range(7)]
    assert pages == 3
    assert await store.read_run_events("", limit=0) == ([], "")


async def test_tail_skips_what_came_before(store: Store) -> None:
    await store.append_run_event("c1", "old", FINISHED)
    tail = await store.run_events_tail()
    await store.append_run_event("c1", "new", STARTED)
    events, _ = await store.read_run_events(tail)
    assert [e.run_id for e in events] == ["new"]


async def test_every_process_sees_every_event_once(backend: Backend) -> None:
    one, two, reader = await backend.open(), await backend.open(), await backend.open()
    await asyncio.gather(
        *[(one if i % 2 else two).append_run_event(f"c{i}", f"r{i}", FINISHED) for i in range(40)]
    )
    events, _ = await reader.read_run_events("", limit=1000)
    assert sorted(e.run_id for e in events) == sorted(f"r{i}" for i in range(40))
    cursors = [e.cursor for e in events]
    assert len(set(cursors)) == 40
    # Cursors order the feed: reading on from any of them gives exactly what follows it.
    middle = cursors[19]
    after, _ = await reader.read_run_events(middle, limit=1000)
    assert [e.cursor for e in after] == cursors[20:]


async def test_feed_is_capped(store: Store) -> None:
    kept = 50
    store.run_events_kept = kept  # type: ignore[attr-defined]
    for i in range(400):
        await store.append_run_event("c1", f"r{i:03d}", FINISHED)
    events, _ = await store.read_run_events("", limit=1000)
    ids = [e.run_id for e in events]
    # Redis trims by whole stream nodes (MAXLEN ~, 100 entries a node by default): about the cap.
    assert kept <= len(ids) <= kept + 100
    assert ids == [f"r{i:03d}" for i in range(400 - len(ids), 400)]
