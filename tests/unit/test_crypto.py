"""Token encryption: round trips, key rotation, wrong keys, the sandbox's development key, bad settings."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.config import Settings
from bot.crypto import DEV_KEY_FILE, TokenCipher, load_cipher, rotate_all
from bot.errors import ConfigError, StoreError
from bot.storage.base import TokenKind
from bot.storage.sqlite import SqliteStore


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(_env_file=None, data_dir=tmp_path / "data", **values)  # type: ignore[arg-type]


def test_round_trip_bytes_and_json() -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    blob = cipher.encrypt(b"\x00secret\xff")
    assert b"secret" not in blob
    assert cipher.decrypt(blob) == b"\x00secret\xff"
    tokens = {"access_token": "at", "refresh_token": "rt", "expires_at": 1714550400, "scopes": ["a", "b"]}
    sealed = cipher.encrypt_json(tokens)
    assert b"refresh_token" not in sealed
    assert cipher.decrypt_json(sealed) == tokens
    assert cipher.encrypt(b"same") != cipher.encrypt(b"same")  # a fresh IV every time


def test_old_key_still_decrypts_and_rotate_moves_to_the_new_one() -> None:
    old_key, new_key = TokenCipher.generate_key(), TokenCipher.generate_key()
    old = TokenCipher([old_key])
    blob = old.encrypt(b"tokens")
    both = TokenCipher([new_key, old_key])
    assert both.decrypt(blob) == b"tokens"
    rotated = both.rotate(blob)
    assert TokenCipher([new_key]).decrypt(rotated) == b"tokens"
    with pytest.raises(StoreError):
        old.decrypt(rotated)
    # New writes use the first key only.
    assert TokenCipher([new_key]).decrypt(both.encrypt(b"x")) == b"x"


def test_wrong_key_raises_store_error_without_the_blob() -> None:
    blob = TokenCipher([TokenCipher.generate_key()]).encrypt(b"tokens")
    other = TokenCipher([TokenCipher.generate_key()])
    with pytest.raises(StoreError) as caught:
        other.decrypt(blob)
    assert "TOKEN_ENCRYPTION_KEYS" in str(caught.value)
    assert blob.decode() not in str(caught.value)
    assert caught.value.__cause__ is None
    with pytest.raises(StoreError):
        other.decrypt(b"not a fernet token")
    with pytest.raises(StoreError):
        other.rotate(blob)
    with pytest.raises(StoreError):
        other.decrypt_json(blob)


def test_decrypt_json_of_non_json_is_a_store_error() -> None:
    cipher = TokenCipher([TokenCipher.generate_key()])
    with pytest.raises(StoreError, match="not JSON"):
        cipher.decrypt_json(cipher.encrypt(b"\xff\xfe"))


def test_generated_keys_are_valid_fernet_keys() -> None:
    key = TokenCipher.generate_key()
    assert isinstance(key, str)
    Fernet(key)
    assert key != TokenCipher.generate_key()


def test_bad_key_names_the_setting_and_position_but_not_the_key(tmp_path: Path) -> None:
    bad = "this-is-not-a-fernet-key-but-looks-secret"
    with pytest.raises(ConfigError) as caught:
        load_cipher(settings(tmp_path, token_encryption_keys=f"{TokenCipher.generate_key()},{bad}"))
    message = str(caught.value)
    assert message.startswith("TOKEN_ENCRYPTION_KEYS: key 2 is not a valid Fernet key")
    assert bad not in message
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or bad not in str(caught.value.__context__)
    with pytest.raises(ConfigError, match="key 1"):
        TokenCipher([bad])
    with pytest.raises(ConfigError, match="TOKEN_ENCRYPTION_KEYS"):
        TokenCipher([])


def test_keys_from_settings(tmp_path: Path) -> None:
    first, second = TokenCipher.generate_key(), TokenCipher.generate_key()
    cipher = load_cipher(settings(tmp_path, token_encryption_keys=f" {first} , {second} ", sandbox=False))
    assert cipher.key_count == 2
    assert TokenCipher([first]).decrypt(cipher.encrypt(b"x")) == b"x"
    assert not (tmp_path / "data" / DEV_KEY_FILE).exists()


def test_dev_key_generated_once_and_reused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sandbox = settings(tmp_path, sandbox=True)
    with caplog.at_level(logging.WARNING, logger="bot.crypto"):
        first = load_cipher(sandbox)
    path = tmp_path / "data" / DEV_KEY_FILE
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "TOKEN_ENCRYPTION_KEYS" in caplog.text
    assert key not in caplog.text
    blob = first.encrypt(b"kept across restarts")
    second = load_cipher(sandbox)
    assert second.decrypt(blob) == b"kept across restarts"
    assert path.read_text().strip() == key
    assert sorted(p.name for p in path.parent.iterdir()) == [DEV_KEY_FILE]  # no temporary files left


def test_damaged_dev_key_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / DEV_KEY_FILE).write_text("garbage\n")
    with pytest.raises(ConfigError, match="delete that file"):
        load_cipher(settings(tmp_path, sandbox=True))


def test_no_keys_outside_sandbox_is_a_config_error(tmp_path: Path) -> None:
    # Settings refuses this already; load_cipher must too if handed such an object.
    sandbox = settings(tmp_path, sandbox=True)
    production = sandbox.model_copy(update={"sandbox": False})
    with pytest.raises(ConfigError, match=r"^TOKEN_ENCRYPTION_KEYS: required outside sandbox mode"):
        load_cipher(production)
    assert not (tmp_path / "data" / DEV_KEY_FILE).exists()


async def test_rotate_all_re_encrypts_every_blob(tmp_path: Path) -> None:
    old_key, new_key = TokenCipher.generate_key(), TokenCipher.generate_key()
    old = TokenCipher([old_key])
    store = await SqliteStore.open(tmp_path / "connector.db")
    try:
        await store.put_tokens("c1", TokenKind.XERO, old.encrypt_json({"rt": "1"}))
        await store.put_tokens("c1", TokenKind.DYNAMICS, old.encrypt_json({"cache": "2"}))
        await store.put_tokens("c2", TokenKind.XERO, old.encrypt_json({"rt": "3"}))
        assert await rotate_all(store, TokenCipher([new_key, old_key])) == 3
        only_new = TokenCipher([new_key])
        blobs = await store.all_token_blobs()
        assert sorted(
            only_new.decrypt_json(blob)["rt" if kind == TokenKind.XERO else "cache"]
            for _, kind, blob in blobs
        ) == ["1", "2", "3"]
    finally:
        await store.close()
