"""The sign-in keeper: refreshes sign-ins that no run uses, before the providers drop them.

A run refreshes the Xero and Dynamics 365 tokens it uses, so an active connection keeps its sign-ins
alive by itself. A paused connection, or one whose runs fail for another reason, does not: Xero drops a
refresh token unused for 60 days (https://developer.xero.com/faq/oauth2 : "Unused refresh tokens expire
after 60 days"), Entra ID one inactive for 90 days (https://learn.microsoft.com/entra/identity-platform/
refresh-tokens : "90 days for all other scenarios"; AADSTS700082 "expired due to inactivity"). Then only
a person can reconnect. So every `interval` the keeper looks at every connection that is not
disconnected (paused ones included) and refreshes a sign-in idle for longer than its threshold, and
when it cannot, tells the connection's channel once, with the reason as a typed `AttentionReason`
(the words and the Reconnect button are `bot.teams`' business).

What it costs: a tick reads the connection list and the keeper's own small record of each connection
(one `read_documents` per batch), and from those alone knows which connections can be due: the
record holds a lower bound of when the stored Xero refresh token was issued and when Dynamics was last
kept alive, so recent ones are skipped without reading their tokens or calling a provider. Only due
ones have their tokens read (a run may have renewed them: then nothing is called) and at most
`concurrency` provider calls run at once.

Races: the Xero refresh goes through `XeroTokenProvider.refresh_if_idle`, under the same per-connection
locks as a run's refresh; after waiting for them it sees a token a run just refreshed and does not
refresh again (a second refresh of one Xero token set would supersede the run's). The Dynamics refresh
goes through `DynamicsAuth.access_token`, serialised per connection the same way. A store lock keeps
ticks of several bot processes from overlapping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ValidationError

from bot.config import Settings
from bot.errors import AuthError, ConcurrencyError, ConnectorError, ProviderError
from bot.storage.base import Connection, ConnectionStatus, Provider, Store
from bot.sync.ports import AttentionDetail, AttentionReason, Clock, Notifier, SystemClock
from bot.sync.xero_auth import XeroTokenSet

log = logging.getLogger(__name__)

# Hard limits of the providers (see the module docstring for the pages).
XERO_REFRESH_LIFETIME = timedelta(days=60)
ENTRA_REFRESH_INACTIVITY = timedelta(days=90)
RECORD_PREFIX = "signin-keeper:"
TICK_LOCK = "signin-keeper:tick"


class Lapse(StrEnum):
    """Why a sign-in needs a person."""

    REFUSED = "refused"  # the provider refused the refresh token (invalid_grant): it has lapsed
    EXPIRING = "expiring"  # within `warn_before` of the provider's hard expiry, and the refresh failed


ATTENTION: dict[tuple[Provider, Lapse], AttentionReason] = {
    (Provider.XERO, Lapse.REFUSED): AttentionReason.XERO_RECONNECT,
    (Provider.XERO, Lapse.EXPIRING): AttentionReason.XERO_TOKEN_EXPIRING,
    (Provider.DYNAMICS, Lapse.REFUSED): AttentionReason.DYNAMICS_RECONNECT,
    (Provider.DYNAMICS, Lapse.EXPIRING): AttentionReason.DYNAMICS_SIGNIN_EXPIRING,
}


class XeroKeep(Protocol):
    """What the keeper needs of `XeroTokenProvider`."""

    async def load(self, connection_id: str) -> XeroTokenSet | None: ...

    async def refresh_if_idle(self, connection_id: str, max_idle: timedelta) -> bool: ...


class DynamicsKeep(Protocol):
    """What the keeper needs of `DynamicsAuth`."""

    async def access_token(
        self, connection_id: str, resource_url: str, *, force_refresh: bool = False
    ) -> str: ...


@dataclass(frozen=True)
class KeeperPolicy:
    interval: timedelta = timedelta(hours=1)
    xero_idle: timedelta = timedelta(days=30)
    dynamics_idle: timedelta = timedelta(days=30)
    warn_before: timedelta = timedelta(days=7)
    batch: int = 200
    concurrency: int = 4
    # After a failed refresh: a provider that did not answer is asked again soon, a refusal once a day
    # (a reconnect in between stores new tokens, which the next look finds fresh).
    failed_retry: timedelta = timedelta(hours=1)
    refused_retry: timedelta = timedelta(days=1)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeeperPolicy:
        return cls(
            interval=timedelta(seconds=settings.signin_keeper_interval_seconds),
            xero_idle=timedelta(days=settings.xero_refresh_idle_days),
            dynamics_idle=timedelta(days=settings.dynamics_refresh_idle_days),
            warn_before=timedelta(days=settings.signin_warn_days),
            batch=settings.signin_keeper_batch,
            concurrency=settings.signin_keeper_concurrency,
        )


class KeeperRecord(BaseModel):
    """What the keeper remembers of one connection (a store document; no token, no secret)."""

    # A lower bound of when the stored Xero refresh token was issued: runs and reconnects only make it newer.
    xero_issued_at: datetime | None = None
    xero_retry_at: datetime | None = None
    # When the keeper last refreshed the Dynamics sign-in (a successful run counts as well).
    dynamics_used_at: datetime | None = None
    dynamics_retry_at: datetime | None = None
    # AttentionReason value -> which sign-in it was about: one card per lapse, not one per tick.
    warned: dict[str, str] = {}

    def forget_warnings(self, provider: Provider) -> None:
        for lapse in Lapse:
            self.warned.pop(ATTENTION[provider, lapse].value, None)


@dataclass
class KeeperReport:
    """What one tick did (for logs and tests)."""

    looked_at: int = 0  # connections considered (not disconnected)
    due: int = 0  # whose record said a sign-in could need keeping
    xero_refreshed: list[str] = field(default_factory=list)
    dynamics_refreshed: list[str] = field(default_factory=list)
    warned: list[tuple[str, AttentionReason]] = field(default_factory=list)
    failed: int = 0
    skipped_tick: bool = False  # another process was ticking


def _latest(*moments: datetime | None) -> datetime | None:
    present = [m for m in moments if m is not None]
    return max(present) if present else None


class SignInKeeper:
    def __init__(
        self,
        store: Store,
        xero: XeroKeep,
        dynamics: DynamicsKeep,
        notifier: Notifier,
        *,
        discovery_url: str,
        policy: KeeperPolicy | None = None,
        clock: Clock | None = None,
        start_delay: float = 30.0,
    ) -> None:
        self._store = store
        self._xero = xero
        self._dynamics = dynamics
        self._notifier = notifier
        self._discovery_url = discovery_url
        self.policy = policy or KeeperPolicy()
        self._clock = clock or SystemClock()
        self._start_delay = start_delay
        self._owner = f"keeper:{uuid.uuid4().hex[:12]}"
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="signin-keeper")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        wait = self._start_delay
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)
            if self._stopping.is_set():
                return
            try:
                report = await self.tick()
                log.info(
                    "sign-in keeper: %d looked at, %d due, %d Xero and %d Dynamics refreshed, %d warned",
                    report.looked_at,
                    report.due,
                    len(report.xero_refreshed),
                    len(report.dynamics_refreshed),
                    len(report.warned),
                )
            except ConnectorError:
                log.warning("sign-in keeper tick failed; the next one tries again", exc_info=True)
            except Exception:
                log.exception("unexpected error in the sign-in keeper")
            wait = self.policy.interval.total_seconds()

    # ---- one tick --------------------------------------------------------------------------------

    async def tick(self) -> KeeperReport:
        """Keep every due sign-in alive; one process at a time (the others skip their tick)."""
        report = KeeperReport()
        ttl = max(600.0, self.policy.interval.total_seconds())
        if not await self._store.acquire_lock(TICK_LOCK, self._owner, ttl):
            report.skipped_tick = True
            return report
        try:
            connections = [
                c for c in await self._store.list_connections() if c.status != ConnectionStatus.DISCONNECTED
            ]
            report.looked_at = len(connections)
            limit = asyncio.Semaphore(self.policy.concurrency)
            for start in range(0, len(connections), self.policy.batch):
                await self._batch(connections[start : start + self.policy.batch], limit, report)
        finally:
            with contextlib.suppress(ConnectorError):
                await self._store.release_lock(TICK_LOCK, self._owner)
        return report

    async def _batch(
        self, connections: Sequence[Connection], limit: asyncio.Semaphore, report: KeeperReport
    ) -> None:
        keys = [RECORD_PREFIX + c.id for c in connections]
        found = await self._store.read_documents(keys)
        now = self._clock.now()
        work = []
        for connection, key in zip(connections, keys, strict=True):
            doc = found.get(key)
            record = KeeperRecord()
            if doc is not None:
                with contextlib.suppress(ValidationError):
                    record = KeeperRecord.model_validate(doc.value)
            xero_due, dynamics_due = self._xero_due(record, now), self._dynamics_due(connection, record, now)
            if xero_due or dynamics_due:
                report.due += 1
                etag = doc.etag if doc is not None else None
                work.append(self._keep(connection, record, etag, xero_due, dynamics_due, limit, report))
        await asyncio.gather(*work)

    def _xero_due(self, record: KeeperRecord, now: datetime) -> bool:
        if record.xero_retry_at is not None and now < record.xero_retry_at:
            return False
        return record.xero_issued_at is None or now - record.xero_issued_at >= self.policy.xero_idle

    def _dynamics_due(self, connection: Connection, record: KeeperRecord, now: datetime) -> bool:
        if record.dynamics_retry_at is not None and now < record.dynamics_retry_at:
            return False
        used = _latest(record.dynamics_used_at, connection.last_success_at, connection.created_at)
        return used is None or now - used >= self.policy.dynamics_idle

    async def _keep(
        self,
        connection: Connection,
        record: KeeperRecord,
        etag: str | None,
        xero_due: bool,
        dynamics_due: bool,
        limit: asyncio.Semaphore,
        report: KeeperReport,
    ) -> None:
        async with limit:
            try:
                if xero_due:
                    await self._keep_xero(connection, record, report)
                if dynamics_due:
                    await self._keep_dynamics(connection, record, report)
            except ConnectorError:
                # The store failing mid-way: what was learnt is still written below if it can be.
                report.failed += 1
                log.warning("could not keep the sign-ins of connection %s", connection.id, exc_info=True)
            except Exception:
                # One connection's surprise must not stop the keeper for all the others.
                report.failed += 1
                log.exception("unexpected error keeping the sign-ins of connection %s", connection.id)
            try:
                await self._store.write_document(
                    RECORD_PREFIX + connection.id, record.model_dump(mode="json"), etag
                )
            except ConcurrencyError:
                log.info("keeper record of connection %s changed meanwhile; not written", connection.id)
            except ConnectorError:
                log.warning("could not save the keeper record of connection %s", connection.id, exc_info=True)

    async def _keep_xero(self, connection: Connection, record: KeeperRecord, report: KeeperReport) -> None:
        now = self._clock.now()
        tokens = await self._xero.load(connection.id)
        if tokens is None:
            # Nothing to keep (never connected, or disconnected meanwhile); a reconnect stores new ones.
            record.xero_retry_at = now + self.policy.refused_retry
            return
        record.xero_issued_at = tokens.refresh_issued_at
        if now - tokens.refresh_issued_at < self.policy.xero_idle:
            # A run or a reconnect renewed it since the keeper last looked: no call to Xero.
            record.xero_retry_at = None
            record.forget_warnings(Provider.XERO)
            return
        sign_in = tokens.refresh_issued_at.isoformat()
        try:
            refreshed = await self._xero.refresh_if_idle(connection.id, self.policy.xero_idle)
        except ProviderError as exc:
            lapsed = isinstance(exc, AuthError) and exc.reconnect_required
            expires = tokens.refresh_issued_at + XERO_REFRESH_LIFETIME
            await self._failed(connection, record, report, Provider.XERO, lapsed, expires, sign_in, exc)
            return
        fresh = await self._xero.load(connection.id)
        record.xero_issued_at = fresh.refresh_issued_at if fresh is not None else now
        record.xero_retry_at = None
        record.forget_warnings(Provider.XERO)
        if refreshed:
            report.xero_refreshed.append(connection.id)
            log.info("sign-in keeper refreshed the idle Xero sign-in of connection %s", connection.id)

    async def _keep_dynamics(
        self, connection: Connection, record: KeeperRecord, report: KeeperReport
    ) -> None:
        used = _latest(record.dynamics_used_at, connection.last_success_at, connection.created_at)
        audience = connection.dataverse_env_url or connection.dataverse_api_url or self._discovery_url
        try:
            # force_refresh skips MSAL's cached access token, so the refresh token itself is used (and rotated).
            await self._dynamics.access_token(connection.id, audience, force_refresh=True)
        except ProviderError as exc:
            lapsed = isinstance(exc, AuthError) and exc.reconnect_required
            expires = (used or self._clock.now()) + ENTRA_REFRESH_INACTIVITY
            sign_in = used.isoformat() if used is not None else ""
            await self._failed(connection, record, report, Provider.DYNAMICS, lapsed, expires, sign_in, exc)
            return
        record.dynamics_used_at = self._clock.now()
        record.dynamics_retry_at = None
        record.forget_warnings(Provider.DYNAMICS)
        report.dynamics_refreshed.append(connection.id)
        log.info("sign-in keeper refreshed the Dynamics 365 sign-in of connection %s", connection.id)

    async def _failed(
        self,
        connection: Connection,
        record: KeeperRecord,
        report: KeeperReport,
        provider: Provider,
        lapsed: bool,
        expires: datetime,
        sign_in: str,
        exc: ProviderError,
    ) -> None:
        """A refresh that did not work: retry later, and warn when a person has to act."""
        now = self._clock.now()
        report.failed += 1
        retry = now + (self.policy.refused_retry if lapsed else self.policy.failed_retry)
        if provider is Provider.XERO:
            record.xero_retry_at = retry
        else:
            record.dynamics_retry_at = retry
        log.warning(
            "sign-in keeper could not refresh the %s sign-in of connection %s (%s %s)",
            provider.value,
            connection.id,
            type(exc).__name__,
            exc.code,
        )
        if lapsed:
            # A connection already waiting for a reconnect was told so by the run that found out.
            if connection.status != ConnectionStatus.NEEDS_RECONNECTION:
                await self._warn(connection, record, report, ATTENTION[provider, Lapse.REFUSED], sign_in)
        elif now >= expires - self.policy.warn_before:
            await self._warn(connection, record, report, ATTENTION[provider, Lapse.EXPIRING], sign_in)

    async def _warn(
        self,
        connection: Connection,
        record: KeeperRecord,
        report: KeeperReport,
        reason: AttentionReason,
        sign_in: str,
    ) -> None:
        if record.warned.get(reason.value) == sign_in:
            return  # this sign-in's lapse was told already
        record.warned[reason.value] = sign_in
        report.warned.append((connection.id, reason))
        try:
            await self._notifier.needs_attention(connection, reason, AttentionDetail())
        except Exception:
            # Telling is best effort (the Teams notifier never raises; another notifier might).
            log.warning("could not tell about connection %s (%s)", connection.id, reason.value, exc_info=True)
