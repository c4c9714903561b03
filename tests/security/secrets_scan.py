"""Where secrets could leak at rest, read as raw bytes, and the secrets the product holds.

`stored_bytes` reads the SQLite files (database, WAL and shared memory: recent writes live in the WAL)
or every Redis key and value by type (DUMP would be LZF-compressed and hide plain text), plus the
Redis append-only file when the test suite started the server. `held_secrets` decrypts what the
product stored, so the scan looks for exactly the tokens it keeps, and adds what the identity sandboxes
issued and the configured client secrets and encryption keys.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis as redis_sync

from bot.crypto import TokenCipher
from bot.logs import configure_logging
from bot.storage.base import Store, TokenKind


def sqlite_bytes(data_dir: Path) -> bytes:
    """Every value of every table (a value longer than a page is split over overflow pages in the
    file, so the raw bytes alone could hide a secret), then the raw files (freed pages, the WAL)."""
    files = sorted(data_dir.glob("connector.db*"))
    assert files, f"no SQLite files in {data_dir}"
    parts: list[bytes] = []
    db = sqlite3.connect(data_dir / "connector.db")
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                for value in row:
                    if isinstance(value, bytes):
                        parts.append(value)
                    elif value is not None:
                        parts.append(str(value).encode("utf-8"))
    finally:
        db.close()
    parts += [path.read_bytes() for path in files]
    return b"\n".join(parts)


def redis_bytes(url: str, aof_dir: Path | None) -> bytes:
    client = redis_sync.Redis.from_url(url)
    parts: list[bytes] = []
    try:
        for key in client.scan_iter(count=500):
            parts.append(key)
            kind = client.type(key).decode()
            if kind == "string":
                parts.append(client.get(key) or b"")
            elif kind == "hash":
                for field_name, value in client.hgetall(key).items():
                    parts += [field_name, value]
            elif kind == "list":
                parts += client.lrange(key, 0, -1)
            elif kind == "set":
                parts += list(client.smembers(key))
            elif kind == "zset":
                parts += [member for member, _ in client.zrange(key, 0, -1, withscores=True)]
            elif kind == "stream":
                for _id, entry in client.xrange(key):
                    for field_name, value in entry.items():
                        parts += [field_name, value]
            else:
                raise AssertionError(f"unexpected Redis type {kind} at {key!r}")
    finally:
        client.close()
    if aof_dir is not None:
        # The append-only file: every write as the server logged it to disk.
        parts += [path.read_bytes() for path in sorted(aof_dir.rglob("*.aof")) if path.is_file()]
    return b"\n".join(parts)


def _msal_secrets(cache: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for section in ("AccessToken", "RefreshToken", "IdToken"):
        for entry in (cache.get(section) or {}).values():
            secret = entry.get("secret")
            if secret:
                yield f"Dynamics {section}", secret


async def held_secrets(store: Store, cipher: TokenCipher) -> tuple[list[tuple[str, str]], list[bytes]]:
    """(kind, secret) for every token the store holds (decrypted here), and the encrypted blobs."""
    found: list[tuple[str, str]] = []
    blobs: list[bytes] = []
    for _connection_id, kind, blob in await store.all_token_blobs():
        blobs.append(blob)
        plain = cipher.decrypt_json(blob)
        if kind == TokenKind.XERO:
            found += [
                ("Xero access token", plain["access_token"]),
                ("Xero refresh token", plain["refresh_token"]),
            ]
        else:
            cache = json.loads(plain) if isinstance(plain, str) else plain
            found += list(_msal_secrets(cache))
    return found, blobs


def needles(secret: str) -> list[str]:
    """The secret, and for a JWT its signature and payload (each unique to this token)."""
    if secret.count(".") == 2 and secret.startswith("eyJ"):
        _header, payload, signature = secret.split(".")
        return [secret, payload, signature]
    return [secret]


def leaks(haystack: bytes | str, secrets: list[tuple[str, str]]) -> list[str]:
    """The kinds of secret found in plain text (never the secret itself: this goes into a test report)."""
    text = haystack.decode("latin-1") if isinstance(haystack, bytes) else haystack
    return sorted(
        {
            kind
            for kind, secret in secrets
            for needle in needles(secret)
            if len(needle) >= 16 and needle in text
        }
    )


class RawCapture(logging.Handler):
    """Keeps each record's text as it was when logged: the product's redacting filter rewrites the
    record object in place afterwards, so a record kept for later would only show the redacted text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.name} {record.levelname} {text}")


@dataclass
class CapturedLogs:
    product: io.StringIO  # what the product's own handler wrote (redacted)
    raw: RawCapture  # every record before redaction


@contextmanager
def product_logging() -> Iterator[CapturedLogs]:
    """Logging exactly as the product configures it at LOG_LEVEL=DEBUG, written to a buffer, with every
    record also captured before redaction. Everything is put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved_levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    configure_logging("DEBUG")
    buffer = io.StringIO()
    product_handler = root.handlers[0]
    assert isinstance(product_handler, logging.StreamHandler)
    product_handler.setStream(buffer)
    raw = RawCapture()
    root.handlers.insert(0, raw)  # first: it reads each record before the redacting filter runs
    try:
        yield CapturedLogs(buffer, raw)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)
