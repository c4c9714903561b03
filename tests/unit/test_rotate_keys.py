"""`python -m bot.rotate_keys` re-encrypts every stored token set with the first key, on SQLite and on
Redis, and never overwrites a token set a refresh is writing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.crypto import TokenCipher, rotate_all
from bot.errors import StoreError
from bot.storage.base import Store, TokenKind
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore
from bot.sync.locks import XERO_TOKENS_LOCK, ConnectionLock

ROOT = Path(__file__).resolve().parents[2]
TOKENS = {
    ("c1", TokenKind.XERO): b'{"refresh_token":"one"}',
    ("c1", TokenKind.DYNAMICS): b'{"cache":"two"}',
    ("c2", TokenKind.XERO): b'{"refresh_token":"three"}',
}


def command(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATA_DIR", "TOKEN_ENCRYPTION_KEYS")
    }
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "bot.rotate_keys"],
        cwd=cwd,
        env={**clean, "SANDBOX": "true", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def fill(store: Store, cipher: TokenCipher) -> None:
    for (connection_id, kind), plain in TOKENS.items():
        await store.put_tokens(connection_id, kind, cipher.encrypt(plain))


async def only_new_opens_everything(store: Store, new_key: str, old_key: str) -> None:
    new_only, old_only = TokenCipher([new_key]), TokenCipher([old_key])
    blobs = await store.all_token_blobs()
    assert {(c, k): new_only.decrypt(b) for c, k, b in blobs} == TOKENS
    for _, _, blob in blobs:
        with pytest.raises(StoreError):
            old_only.decrypt(blob)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_the_command_re_encrypts_every_token_set(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    old_key, new_key = TokenCipher.generate_key(), TokenCipher.generate_key()
    env = {"DATA_DIR": str(tmp_path / "data"), "TOKEN_ENCRYPTION_KEYS": f"{new_key},{old_key}"}
    store: Store
    if backend == "sqlite":
        (tmp_path / "data").mkdir()
        store = await SqliteStore.open(tmp_path / "data" / "connector.db")
    else:
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        store = await RedisStore.open(env["REDIS_URL"])
    try:
        await fill(store, TokenCipher([old_key]))
        result = await asyncio.to_thread(command, tmp_path, **env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "re-encrypted 3 token sets with the first of 2 key(s)"
        assert new_key not in result.stdout + result.stderr
        assert old_key not in result.stdout + result.stderr
        await only_new_opens_everything(store, new_key, old_key)
    finally:
        await store.close()


def test_a_token_set_no_key_opens_stops_it_with_exit_code_1(tmp_path: Path) -> None:
    async def prepare() -> None:
        (tmp_path / "data").mkdir()
        store = await SqliteStore.open(tmp_path / "data" / "connector.db")
        await store.put_tokens("c1", TokenKind.XERO, TokenCipher([TokenCipher.generate_key()]).encrypt(b"{}"))
        await store.close()

    asyncio.run(prepare())
    key = TokenCipher.generate_key()
    result = command(tmp_path, DATA_DIR=str(tmp_path / "data"), TOKEN_ENCRYPTION_KEYS=key)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("key rotation stopped: ")  # after the log lines
    assert key not in result.stderr


class _SlowRead(SqliteStore):
    """Pauses after reading c1's Xero tokens, so another writer can step in between read and write."""

    reading = asyncio.Event()

    async def get_tokens(self, connection_id: str, kind: TokenKind) -> bytes | None:
        blob = await super().get_tokens(connection_id, kind)
        if (connection_id, kind) == ("c1", TokenKind.XERO) and not type(self).reading.is_set():
            type(self).reading.set()
            await asyncio.sleep(0.2)
        return blob


async def test_a_refresh_is_never_overwritten_with_older_tokens(tmp_path: Path) -> None:
    old_key, new_key = TokenCipher.generate_key(), TokenCipher.generate_key()
    rotating = TokenCipher([new_key, old_key])
    store = await _SlowRead.open(tmp_path / "connector.db")
    try:
        await fill(store, TokenCipher([old_key]))
        locks = {
            TokenKind.XERO: ConnectionLock(store, XERO_TOKENS_LOCK, provider="xero"),
            TokenKind.DYNAMICS: ConnectionLock(store, "dynamics-token:", provider="dynamics"),
        }
        rotation = asyncio.create_task(
            rotate_all(store, rotating, hold=lambda cid, kind: locks[kind].hold(cid))
        )
        await _SlowRead.reading.wait()
        # Another process's refresh of c1's Xero tokens, under its own lock object (another owner).
        refresher = ConnectionLock(store, XERO_TOKENS_LOCK, provider="xero")
        refreshed = b'{"refresh_token":"rotated by Xero"}'
        async with refresher.hold("c1"):
            await store.put_tokens("c1", TokenKind.XERO, rotating.encrypt(refreshed))
        assert await rotation == 3
        stored = await store.get_tokens("c1", TokenKind.XERO)
        assert stored is not None
        # Without the lock the rotation would have written c1's old tokens back over the refresh.
        assert TokenCipher([new_key]).decrypt(stored) == refreshed
    finally:
        await store.close()
