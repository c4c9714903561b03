"""Contract: the store as a whole: readiness, raw contents, restarts; plus the backend choice."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import Settings
from bot.crypto import TokenCipher
from bot.storage import RedisStore, SqliteStore, open_store
from bot.storage.base import Store, TokenKind, utcnow
from tests.conftest import RedisServer
from tests.contract.backends import Backend
from tests.contract.records import make_connection, make_ref, make_run

PICKLE_MARKERS = [
    b"\x80\x02",
    b"\x80\x03",
    b"\x80\x04\x95",
    b"\x80\x05\x95",
    b"(dp0",
    b"ccopy_reg",
    b"c__builtin__",
    b"cbuiltins",
]


async def fill(store: Store, cipher: TokenCipher) -> None:
    """One of everything, each carrying a marker to find in the raw dump."""
    await store.create_connection(make_connection("conn-marker"))
    await store.put_tokens("conn-marker", TokenKind.XERO, cipher.encrypt_json({"refresh_token": "rt-secret"}))
    await store.put_state("state-marker", {"flow": "flow-marker"}, ttl_seconds=60)
    await store.save_reference(make_ref("ref-marker"))
    await store.save_run(make_run("run-marker", "conn-marker"))
    await store.put_fingerprints("conn-marker", "accounts", {"acct-marker": "hash-marker"})
    await store.schedule("sched-marker", utcnow() + timedelta(hours=1))
    await store.acquire_lock("lock-marker", "owner-marker", 60)
    await store.write_document("doc-marker", {"dialog": "doc-value-marker"}, None)
    await store.incr_counter("counter-marker", 60)


async def test_ping(store: Store) -> None:
    assert await store.ping()


async def test_dump_all_contains_everything(store: Store) -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    await fill(store, cipher)
    dump = await store.dump_all()
    text = "\n".join(f"{key} {value!r}" for key, value in dump)
    for marker in [
        "conn-marker",
        "state-marker",
        "flow-marker",
        "ref-marker",
        "run-marker",
        "acct-marker",
        "hash-marker",
        "sched-marker",
        "lock-marker",
        "owner-marker",
        "doc-marker",
        "doc-value-marker",
        "counter-marker",
    ]:
        assert marker in text, marker
    [blob] = [value for key, value in dump if value.startswith(b"gAAAA")]
    assert cipher.decrypt_json(blob) == {"refresh_token": "rt-secret"}
    assert b"rt-secret" not in b"".join(value for _, value in dump)


async def test_raw_values_are_json_or_encrypted_never_pickle(store: Store) -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    await fill(store, cipher)
    dump = await store.dump_all()
    assert dump
    for key, value in dump:
        for marker in PICKLE_MARKERS:
            assert marker not in value, (key, marker)
        try:
            json.loads(value)
        except ValueError:
            assert cipher.decrypt(value), key  # not JSON: must be one of our encrypted blobs


async def test_data_survives_close_and_reopen(backend: Backend) -> None:
    first = await backend.open()
    cipher = TokenCipher([TokenCipher.generate_key()])
    await fill(first, cipher)
    await first.claim_due(utcnow() + timedelta(hours=2), "w1", 60, 5)
    before = await first.dump_all()
    await first.close()
    second = await backend.open()
    connection = await second.get_connection("conn-marker")
    assert connection is not None
    assert connection.version == 1
    assert await second.lease_holder("sched-marker") == "w1"
    assert await second.peek_state("state-marker") == {"flow": "flow-marker"}
    assert set(await second.read_documents(["doc-marker"])) == {"doc-marker"}
    assert await second.incr_counter("counter-marker", 60) == 2
    blob = await second.get_tokens("conn-marker", TokenKind.XERO)
    assert blob is not None
    assert cipher.decrypt_json(blob) == {"refresh_token": "rt-secret"}
    assert {key for key, _ in await second.dump_all()} == {key for key, _ in before}


@pytest.mark.redis
async def test_redis_store_survives_a_server_restart(redis_url: str, redis_server: RedisServer) -> None:
    store = await RedisStore.open(redis_url)
    try:
        await store.create_connection(make_connection("c1"))
        now = utcnow()
        await store.schedule("c1", now - timedelta(seconds=1))
        redis_server.restart()
        # The pooled connection died with the server: the next calls reconnect (and reload the scripts).
        assert await store.get_connection("c1") is not None
        [claim] = await store.claim_due(now, "w1", 60, 5)
        assert claim.connection_id == "c1"
        assert await store.ping()
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_prefixes_are_separate(redis_url: str) -> None:
    one = await RedisStore.open(redis_url, prefix="one:")
    two = await RedisStore.open(redis_url, prefix="two:")
    try:
        await one.create_connection(make_connection("c1"))
        await one.put_tokens("c1", TokenKind.XERO, b"blob")
        assert await two.get_connection("c1") is None
        assert await two.all_token_blobs() == []
        assert await two.dump_all() == []
        assert all(key.startswith("one:") for key, _ in await one.dump_all())
    finally:
        await one.close()
        await two.close()


async def test_open_store_picks_sqlite_under_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "not" / "yet"
    store = await open_store(Settings(_env_file=None, data_dir=data_dir, redis_url=""))
    try:
        assert isinstance(store, SqliteStore)
        assert (data_dir / "connector.db").exists()
        assert await store.ping()
    finally:
        await store.close()


@pytest.mark.redis
async def test_open_store_picks_redis_when_configured(redis_url: str, tmp_path: Path) -> None:
    store = await open_store(Settings(_env_file=None, data_dir=tmp_path, redis_url=redis_url))
    try:
        assert isinstance(store, RedisStore)
        assert await store.ping()
        assert not (tmp_path / "connector.db").exists()
    finally:
        await store.close()


async def test_cancelled_calls_leave_the_store_usable(store: Store) -> None:
    # Cancel writes at every point of their way (before, during and after the backend's work).
    for ticks in range(12):
        task = asyncio.create_task(store.put_tokens("c1", TokenKind.XERO, b"blob-%d" % ticks))
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await store.put_tokens("c2", TokenKind.XERO, b"after-%d" % ticks)
        assert await store.get_tokens("c2", TokenKind.XERO) == b"after-%d" % ticks
    assert await store.ping()
