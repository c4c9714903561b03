"""What every part of the Redis store shares: the client, key names under the prefix, the registered
Lua scripts, and the translation of redis-py's errors into `StoreError`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.errors import StoreError
from bot.storage.redis_scripts import SCRIPTS


def ttl_ms(seconds: float) -> int:
    """A TTL in whole milliseconds, never 0 (Redis rejects a zero expiry)."""
    return max(1, int(seconds * 1000))


def as_text(raw: object) -> str:
    return raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)


def as_bytes(raw: bytes | str) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def where(url: str) -> str:
    """The server's address without credentials, for messages."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


@contextmanager
def guard() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreError(f"Redis store failed: {type(exc).__name__}: {exc}") from exc


class RedisBase:
    """The client and prefix the store's parts share, with its scripts registered once."""

    def __init__(self, client: Redis, prefix: str = "xdc:") -> None:
        self._r = client
        self.prefix = prefix
        # Registered scripts are re-loaded by redis-py when the server answers NOSCRIPT (after a restart).
        self._scripts = {name: client.register_script(body) for name, body in SCRIPTS.items()}

    def _k(self, kind: str, name: str = "") -> str:
        return f"{self.prefix}{kind}:{name}"

    async def _run(self, script: str, keys: list[str], args: list[str | int | bytes]) -> Any:
        with guard():
            return await self._scripts[script](keys=keys, args=args)
