"""Xero tokens per connection: stored encrypted, refreshed by one caller at a time, rotation kept.

Xero rotates the refresh token on every refresh, and two refreshers of one token set break each other
(the loser's refresh token is superseded: invalid_grant, reconnect). So a refresh happens only under
two locks: an asyncio.Lock per connection (coroutines of this process) and a store lock with a TTL
(other processes; the TTL frees it if a process dies holding it). After taking them the stored tokens
are read again: if someone else refreshed meanwhile, theirs are used and Xero is not called. The new
token set is saved before its access token is handed out, so a crash can never leave us holding only
a superseded refresh token (if a refresh answer is lost, Xero accepts the old one for 30 minutes).

A reconnect (`save`) and a disconnect (`delete`) replace the set under the same two locks, and a
refresh stores its answer only if the stored set is still the one it refreshed (read again under the
locks just before writing; this also covers a store lock whose TTL ran out during a slow refresh). So
a refresh of the old grant never overwrites a reconnect's tokens or brings deleted ones back, and an
`invalid_grant` for a refresh token that is no longer stored is not a reason to ask for a reconnect.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Protocol

from pydantic import ValidationError

from bot.crypto import TokenCipher
from bot.errors import AuthError, Problem, StoreError
from bot.storage.base import LockStore, TokenKind, TokenStore
from bot.sync.clock import Now, Sleep, asyncio_sleep, utcnow
from bot.sync.locks import XERO_TOKENS_LOCK, ConnectionLock
from bot.sync.xero_auth import XeroOAuth, XeroTokenSet

logger = logging.getLogger(__name__)

ReconnectCallback = Callable[[str], Awaitable[None]]


class TokenLockStore(TokenStore, LockStore, Protocol):
    """What the provider needs of the store (every `Store` has it)."""


def _no_tokens() -> AuthError:
    return AuthError(Problem.NO_TOKENS, reconnect_required=True, provider="xero")


def _replaced() -> AuthError:
    # Not a reason to reconnect: the connection has newer tokens than the ones Xero refused.
    return AuthError(Problem.TOKENS_REPLACED, provider="xero")


class XeroTokenProvider:
    LOCK_PREFIX = XERO_TOKENS_LOCK

    def __init__(
        self,
        store: TokenLockStore,
        cipher: TokenCipher,
        oauth: XeroOAuth,
        on_reconnect_required: ReconnectCallback | None = None,
        *,
        refresh_margin: timedelta = timedelta(minutes=2),
        lock_ttl: float = 60.0,
        lock_wait: float = 65.0,
        now: Now = utcnow,
        sleep: Sleep = asyncio_sleep,
    ) -> None:
        self._store = store
        self._cipher = cipher
        self._oauth = oauth
        self._on_reconnect_required = on_reconnect_required
        self._margin = refresh_margin
        self._now = now
        # Its owner is unique per provider object: two providers in one process act as two processes.
        self._lock = ConnectionLock(
            store,
            self.LOCK_PREFIX,
            provider="xero",
            ttl=lock_ttl,
            wait=lock_wait,
            sleep=sleep,
        )
        # Refresh tokens Xero refused (invalid_grant), so waiting callers do not ask Xero again.
        self._refused: dict[str, str] = {}
        self.refreshes = 0

    async def save(self, connection_id: str, tokens: XeroTokenSet) -> None:
        """Store a new token set (a sign-in or a reconnect). Waits for a refresh in flight: it finishes
        first and is then replaced, or it reads these tokens before it writes anything."""
        async with self._locked(connection_id):
            await self._write(connection_id, tokens)

    async def load(self, connection_id: str) -> XeroTokenSet | None:
        blob = await self._store.get_tokens(connection_id, TokenKind.XERO)
        if blob is None:
            return None
        try:
            return XeroTokenSet.model_validate(self._cipher.decrypt_json(blob))
        except ValidationError:
            raise StoreError(f"the stored Xero tokens of connection {connection_id} are unreadable") from None

    async def delete(self, connection_id: str) -> None:
        """Forget the tokens; under the refresh locks, so a refresh in flight cannot store them again."""
        async with self._locked(connection_id):
            await self._store.delete_tokens(connection_id, TokenKind.XERO)
            self._refused.pop(connection_id, None)

    async def access_token(
        self, connection_id: str, *, force_refresh: bool = False, rejected_token: str | None = None
    ) -> str:
        """A valid access token, refreshed if it expires within the margin.

        `force_refresh` (after a 401): refresh unless the stored token already differs from the one
        Xero rejected (`rejected_token`, else the token stored when the call began)."""
        tokens = await self._require(connection_id)
        stale = (
            rejected_token if rejected_token is not None else (tokens.access_token if force_refresh else None)
        )
        if stale is None and not tokens.expires_within(self._margin, self._now()):
            return tokens.access_token
        tokens = await self._refresh_locked(connection_id, stale)
        return tokens.access_token

    async def refresh_if_idle(self, connection_id: str, max_idle: timedelta) -> bool:
        """Refresh when the refresh token has not been used for `max_idle` (Xero drops it after 60 days).

        For connections that do not run often (paused ones): returns True if it refreshed."""
        tokens = await self._require(connection_id)
        if tokens.refresh_idle(self._now()) < max_idle:
            return False
        fresh = await self._refresh_locked(connection_id, tokens.access_token)
        return fresh.refresh_token != tokens.refresh_token

    async def _require(self, connection_id: str) -> XeroTokenSet:
        tokens = await self.load(connection_id)
        if tokens is None:
            raise _no_tokens()
        return tokens

    async def _refresh_locked(self, connection_id: str, stale: str | None) -> XeroTokenSet:
        async with self._locked(connection_id):
            current = await self._require(connection_id)
            fresh_enough = not current.expires_within(self._margin, self._now())
            if fresh_enough and (stale is None or current.access_token != stale):
                return current  # refreshed by another coroutine or process while we waited
            return await self._refresh(connection_id, current)

    def _locked(self, connection_id: str) -> AbstractAsyncContextManager[None]:
        """Both locks of one connection's token set (bot.sync.locks): every write of it happens inside."""
        return self._lock.hold(connection_id)

    async def _write(self, connection_id: str, tokens: XeroTokenSet) -> None:
        """Encrypt and store; the caller holds the locks."""
        blob = self._cipher.encrypt_json(tokens.model_dump(mode="json"))
        await self._store.put_tokens(connection_id, TokenKind.XERO, blob)
        self._refused.pop(connection_id, None)

    async def _refresh(
        self, connection_id: str, current: XeroTokenSet, *, retried: bool = False
    ) -> XeroTokenSet:
        """Refresh `current` (the stored set, read under the locks the caller holds) and store the answer
        if `current` is still what is stored. `retried`: `current` was stored during another refresh."""
        if self._refused.get(connection_id) == current.refresh_token:
            # Refused before, for this very token: not asked again (the code is Xero's, remembered).
            raise AuthError("invalid_grant", reconnect_required=True, provider="xero")
        try:
            new = await self._oauth.refresh(current.refresh_token)
        except AuthError as exc:
            if not exc.reconnect_required:
                raise
            stored = await self.load(connection_id)
            if stored is None:
                raise _no_tokens() from None  # forgotten (disconnected) while Xero was asked
            if stored.refresh_token == current.refresh_token:
                self._refused[connection_id] = current.refresh_token
                logger.warning(
                    "Xero refused the refresh token of connection %s: reconnect required", connection_id
                )
                if self._on_reconnect_required is not None:
                    await self._on_reconnect_required(connection_id)
                raise
            # Replaced while Xero was asked (a reconnect): the refusal is about a grant that is gone.
            logger.info(
                "Xero refused a replaced refresh token of connection %s; the stored one is used",
                connection_id,
            )
            if retried:
                raise _replaced() from None
            return await self._adopt(connection_id, stored)
        # A refresh answer carries no id_token: keep who the tokens belong to.
        new = new.model_copy(
            update={
                "xero_user_id": new.xero_user_id or current.xero_user_id,
                "email": new.email or current.email,
                "name": new.name or current.name,
                "auth_event_id": new.auth_event_id or current.auth_event_id,
            }
        )
        stored = await self.load(connection_id)
        if stored is None:
            raise _no_tokens()  # forgotten (disconnected) while Xero was asked: nothing comes back
        if stored.refresh_token != current.refresh_token:
            # Replaced while Xero was asked. The answer belongs to the old grant: it must not overwrite
            # the new one (nor be revoked: revoking a grant ends the app's connections in Xero).
            logger.warning(
                "the Xero tokens of connection %s were replaced during a refresh; the refresh is not stored",
                connection_id,
            )
            return stored if retried else await self._adopt(connection_id, stored)
        await self._write(connection_id, new)
        self.refreshes += 1
        logger.info("Xero tokens of connection %s refreshed (valid until %s)", connection_id, new.expires_at)
        return new

    async def _adopt(self, connection_id: str, stored: XeroTokenSet) -> XeroTokenSet:
        """The set someone stored during our refresh: used as it is, or refreshed once if it expires too."""
        if not stored.expires_within(self._margin, self._now()):
            return stored
        return await self._refresh(connection_id, stored, retried=True)
