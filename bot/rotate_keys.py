"""`python -m bot.rotate_keys`: re-encrypt every stored token set with the first TOKEN_ENCRYPTION_KEYS key.

Rolling out a new key: put it first in TOKEN_ENCRYPTION_KEYS (the old one after it) everywhere and
restart, run this once, then remove the old key. It works on the configured store (Redis when
REDIS_URL is set, else the SQLite file in DATA_DIR) and may run while the bot and workers do: each
token set is rewritten under the same per-connection lock as a refresh (bot.sync.locks), so a
refresh in flight is never overwritten with older tokens. Running it twice is harmless.

Exit codes: 0 done; 1 a token set no key opens, or the store could not be reached, or a lock stayed
busy (run it again); 2 bad configuration. Nothing here prints a key or a token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from contextlib import AbstractAsyncContextManager

from bot.config import Settings, config_errors_exit, load_settings
from bot.crypto import load_cipher, rotate_all
from bot.errors import ConnectorError
from bot.logs import configure_logging
from bot.storage.base import TokenKind
from bot.storage.factory import open_store
from bot.sync.locks import DYNAMICS_TOKENS_LOCK, XERO_TOKENS_LOCK, ConnectionLock
from cards.problem_words import error_words

log = logging.getLogger(__name__)

_LOCKS = {TokenKind.XERO: (XERO_TOKENS_LOCK, "xero"), TokenKind.DYNAMICS: (DYNAMICS_TOKENS_LOCK, "dynamics")}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.rotate_keys",
        description=(
            "Re-encrypt every stored token set (Xero and Dynamics 365, every connection) with the first "
            "key of TOKEN_ENCRYPTION_KEYS. Safe while the bot and workers run."
        ),
        epilog=(
            "Settings come from the environment or .env, as for the bot (see README.md): "
            "TOKEN_ENCRYPTION_KEYS (new key first, then the old ones), and REDIS_URL or DATA_DIR for the store. "
            "Remove an old key only after this has finished with exit code 0."
        ),
    )
    return parser.parse_args(argv)


async def rotate(settings: Settings) -> int:
    """Rewrite every token set; returns how many were rewritten."""
    cipher = load_cipher(settings)
    store = await open_store(settings)
    try:
        locks = {
            kind: ConnectionLock(store, prefix, provider=provider)
            for kind, (prefix, provider) in _LOCKS.items()
        }

        def hold(connection_id: str, kind: TokenKind) -> AbstractAsyncContextManager[None]:
            return locks[kind].hold(connection_id)

        return await rotate_all(store, cipher, hold=hold)
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    parse_args(argv)
    with config_errors_exit():
        settings = load_settings()
    configure_logging(settings.log_level)
    try:
        with config_errors_exit():
            rewritten = asyncio.run(rotate(settings))
    except ConnectorError as exc:
        # StoreError (unreadable blob, store down) or a lock that stayed busy: nothing is lost, run again.
        sys.stderr.write(f"key rotation stopped: {error_words(exc)}\n")
        return 1
    keys = len(settings.token_encryption_keys) or 1
    sys.stdout.write(f"re-encrypted {rewritten} token sets with the first of {keys} key(s)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
