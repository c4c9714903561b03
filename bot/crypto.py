"""Token encryption at rest: Fernet (AES-128-CBC + HMAC-SHA256) with key rotation via MultiFernet.

The first key of `TOKEN_ENCRYPTION_KEYS` encrypts; every key decrypts, so a new key is rolled out by
putting it first, running `python -m bot.rotate_keys` (which calls `rotate_all`), and only then
removing the old one. Stores only ever see the
ciphertext. Nothing here logs or formats a key, a blob or a plaintext.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.config import Settings
from bot.errors import ConfigError, StoreError
from bot.storage.base import TokenKind, TokenStore

log = logging.getLogger(__name__)

DEV_KEY_FILE = "dev-token-key"
_KEY_HELP = "(32 url-safe base64-encoded bytes, as made by `python -m bot.crypto` or Fernet.generate_key())"


def _fernet(key: str, position: int) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        # `from None`: the underlying error must not carry the key into logs or tracebacks.
        raise ConfigError(
            f"TOKEN_ENCRYPTION_KEYS: key {position} is not a valid Fernet key {_KEY_HELP}"
        ) from None


class TokenCipher:
    """Encrypts token sets for storage. The first key encrypts; all keys decrypt."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            # A bare string would be iterated character by character: a caller bug worth naming.
            raise TypeError("TokenCipher takes a sequence of keys, not one string")
        if not keys:
            raise ConfigError("TOKEN_ENCRYPTION_KEYS: at least one key is required")
        self._fernets = [_fernet(key, position) for position, key in enumerate(keys, start=1)]
        self._multi = MultiFernet(self._fernets)

    @property
    def key_count(self) -> int:
        return len(self._fernets)

    def encrypt(self, data: bytes) -> bytes:
        return self._multi.encrypt(data)

    def decrypt(self, blob: bytes) -> bytes:
        try:
            return self._multi.decrypt(blob)
        except (InvalidToken, TypeError, ValueError):
            raise StoreError(
                "a stored token set cannot be decrypted with any of the TOKEN_ENCRYPTION_KEYS "
                "(the key that wrote it was removed or changed, or the data is damaged)"
            ) from None

    def rotate(self, blob: bytes) -> bytes:
        """Re-encrypt with the first key (whichever key wrote it)."""
        try:
            return self._multi.rotate(blob)
        except (InvalidToken, TypeError, ValueError):
            raise StoreError(
                "a stored token set cannot be re-encrypted: none of the TOKEN_ENCRYPTION_KEYS opens it"
            ) from None

    def encrypt_json(self, obj: Any) -> bytes:
        return self.encrypt(json.dumps(obj, separators=(",", ":")).encode("utf-8"))

    def decrypt_json(self, blob: bytes) -> Any:
        data = self.decrypt(blob)
        try:
            return json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise StoreError("a stored token set decrypted but is not JSON") from None

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")


def _dev_key(data_dir: Path) -> tuple[str, bool]:
    """The sandbox's development key: read it, or create it once. Returns (key, created)."""
    path = data_dir / DEV_KEY_FILE
    if path.exists():
        return path.read_text(encoding="ascii", errors="replace").strip(), False
    data_dir.mkdir(parents=True, exist_ok=True)
    key = TokenCipher.generate_key()
    # Write a complete private file under another name, then link it into place: linking fails if
    # another process got there first, so every process ends up with the same key.
    fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".dev-token-key.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text(encoding="ascii", errors="replace").strip(), False
    finally:
        os.unlink(tmp)
    return key, True


def load_cipher(settings: Settings) -> TokenCipher:
    """The cipher for this deployment: TOKEN_ENCRYPTION_KEYS, or the sandbox's development key."""
    if settings.token_encryption_keys:
        return TokenCipher(settings.token_encryption_keys)
    if not settings.sandbox_mode:
        raise ConfigError(
            f"TOKEN_ENCRYPTION_KEYS: required outside sandbox mode; generate one with `python -m bot.crypto` {_KEY_HELP}"
        )
    path = settings.data_dir / DEV_KEY_FILE
    try:
        key, created = _dev_key(settings.data_dir)
    except OSError as exc:
        raise ConfigError(
            f"DATA_DIR: cannot keep the development token key in {path}: {exc.strerror}"
        ) from None
    try:
        cipher = TokenCipher([key])
    except ConfigError:
        raise ConfigError(
            f"TOKEN_ENCRYPTION_KEYS: not set, and the development key in {path} is not a valid Fernet key; "
            "delete that file to get a new one (tokens stored with it will need reconnecting)"
        ) from None
    log.warning(
        "TOKEN_ENCRYPTION_KEYS is not set: sandbox mode %s a development key in %s; set "
        "TOKEN_ENCRYPTION_KEYS before connecting real accounts",
        "generated" if created else "is using",
        path,
    )
    return cipher


Hold = Callable[[str, TokenKind], AbstractAsyncContextManager[None]]


async def rotate_all(store: TokenStore, cipher: TokenCipher, *, hold: Hold | None = None) -> int:
    """Re-encrypt every stored token blob with the first key; returns how many were rewritten.

    `hold(connection_id, kind)`: the lock every writer of that token set holds (bot.sync.locks), so
    a refresh cannot write between our read and our write. A blob that changed since the listing (a
    refresh wrote a new one, encrypted with the current first key already) is left alone rather than
    overwritten with the old tokens. Raises StoreError on a blob no key opens (nothing after it is
    rewritten; what was before stays rewritten, and a second run is harmless).
    """
    rewritten = 0
    for connection_id, kind, blob in await store.all_token_blobs():
        async with hold(connection_id, kind) if hold is not None else contextlib.nullcontext():
            if await store.get_tokens(connection_id, kind) != blob:
                continue
            await store.put_tokens(connection_id, kind, cipher.rotate(blob))
            rewritten += 1
    log.info("re-encrypted %d token sets with the first TOKEN_ENCRYPTION_KEYS key", rewritten)
    return rewritten


if __name__ == "__main__":
    # `python -m bot.crypto`: a new key for TOKEN_ENCRYPTION_KEYS, on stdout only.
    import sys

    sys.stdout.write(TokenCipher.generate_key() + "\n")
