"""Disconnecting a connection: stop it here first, then undo each sign-in, and say what could not be undone.

Order matters:
1. The connection is marked disconnected and taken off the schedule, so no new run starts (a run under
   way finishes; it finds no tokens afterwards and changes nothing more).
2. The Connector row in Dynamics 365 is marked disconnected, while we still hold a Dynamics token.
3. Xero: the organisation's connection to the app is removed (`DELETE /connections/{id}`), then the
   refresh token is revoked (which ends the grant itself).
4. The tokens of both providers are forgotten, then the connection and everything kept for it (its
   settings, run history, fingerprints, schedule) are deleted from our store: always, whatever Xero or
   Dynamics answered, so nothing usable stays behind.

What is already in Dynamics 365 stays: it is the customer's data. Steps 2 and 3 are best effort: a
provider that cannot be reached is named in the report, and its sign-in expires on its own.

Step 3 takes away only what is this connection's alone (issue 14). Xero keeps one connection per user,
app and organisation (the same `xero_connection_id` for every sign-in of that user to that
organisation), and revoking a refresh token ends the user's grant to the app, with every organisation
it connected. So when another live connection (another chat, another creator) has the same Xero
connection, or tokens of the same Xero user, neither is done: our tokens for this connection are
forgotten and the report says the Xero sign-in was kept for the other one (naming nothing about it).
Xero: `DELETE /Connections/{id}` "deletes a connection for this user (i.e. disconnect a tenant)"
(https://github.com/XeroAPI/Xero-OpenAPI/blob/master/xero-identity.yaml); revoking a refresh token
"removes all their connections to your app" (https://github.com/XeroAPI/xero-node/releases/tag/4.10.1;
https://developer.xero.com/documentation/guides/oauth2/auth-flow/#revoking-tokens). Connections of a
setup still under way (tokens not yet a connection's) are not counted.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.errors import ConnectorError, NotFound
from bot.storage.base import Connection, ConnectionStatus, Store, utcnow
from bot.storage.helpers import update_connection
from bot.sync.dynamics_auth import DynamicsAuth
from bot.sync.ledger import forget_ledgers
from bot.sync.mapping import Entity
from bot.sync.ports import DataverseFactory
from bot.sync.records import mark_connector_disconnected
from bot.sync.xero_auth import XeroOAuth, XeroTokenSet
from bot.sync.xero_tokens import XeroTokenProvider

log = logging.getLogger(__name__)


@dataclass
class DisconnectReport:
    connection: Connection
    xero_removed: bool = False  # the organisation's connection to the app is gone (or was already)
    xero_revoked: bool = False
    dynamics_marked: bool = False
    # Another live connection uses the same Xero connection or grant: it was left in place.
    xero_shared: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what to tell that is not a problem

    @property
    def complete(self) -> bool:
        return not self.problems


class Disconnector:
    def __init__(
        self,
        store: Store,
        xero_oauth: XeroOAuth,
        xero_tokens: XeroTokenProvider,
        dynamics_auth: DynamicsAuth,
        dataverse_factory: DataverseFactory,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._xero_oauth = xero_oauth
        self._xero_tokens = xero_tokens
        self._dynamics_auth = dynamics_auth
        self._dataverse_factory = dataverse_factory
        self._clock = clock

    async def disconnect(self, connection_id: str, by: str) -> DisconnectReport | None:
        """Run every step; None if the connection does not exist (or is already disconnected)."""
        now = self._clock()
        reason = f"Disconnected by {by}" if by else "Disconnected"

        def apply(c: Connection) -> Connection:
            return c.model_copy(
                update={
                    "status": ConnectionStatus.DISCONNECTED,
                    "status_reason": reason,
                    "next_run_at": None,
                    "updated_at": now,
                }
            )

        current = await self._store.get_connection(connection_id)
        if current is None or current.status == ConnectionStatus.DISCONNECTED:
            return None
        connection = await update_connection(self._store, connection_id, apply)
        if connection is None:
            return None
        await self._store.unschedule(connection_id)
        report = DisconnectReport(connection)
        await self._mark_dynamics(report)
        await self._undo_xero(report)
        await self._forget(report)
        log.info(
            "connection disconnected",
            extra={"connection_id": connection_id, "complete": report.complete},
        )
        return report

    async def _mark_dynamics(self, report: DisconnectReport) -> None:
        connection = report.connection
        if not connection.dataverse_api_url:
            report.dynamics_marked = True  # never got as far as Dynamics: nothing to mark
            return
        try:
            await mark_connector_disconnected(self._dataverse_factory(connection), connection)
            report.dynamics_marked = True
        except ConnectorError as exc:
            log.warning("could not mark the Connector row disconnected: %s", type(exc).__name__)
            report.problems.append(
                "I couldn't mark the connection as disconnected in Dynamics 365 (its Connector record still "
                "shows the old status)."
            )

    async def _undo_xero(self, report: DisconnectReport) -> None:
        connection_id = report.connection.id
        try:
            tokens = await self._xero_tokens.load(connection_id)
        except ConnectorError:
            tokens = None
        if tokens is None:
            report.xero_removed = report.xero_revoked = True  # nothing held, nothing to undo
            return
        if await self._shared_in_xero(report.connection, tokens):
            report.xero_shared = True
            report.notes.append(
                "Another connection uses the same Xero sign-in, so I left it in place in Xero and only "
                "forgot it here."
            )
            log.info("connection %s: its Xero sign-in is shared; not revoked", connection_id)
            return
        xero_connection_id = report.connection.xero_connection_id
        if xero_connection_id:
            try:
                access = await self._xero_tokens.access_token(connection_id)
                await self._xero_oauth.delete_connection(access, xero_connection_id)
                report.xero_removed = True
            except NotFound:
                report.xero_removed = True  # already disconnected in Xero
            except ConnectorError as exc:
                log.warning("could not remove the Xero connection: %s", type(exc).__name__)
        try:
            # Load again: getting an access token above may have rotated the refresh token.
            latest = await self._xero_tokens.load(connection_id) or tokens
            await self._xero_oauth.revoke(latest.refresh_token)
            report.xero_revoked = True
            report.xero_removed = True  # revoking ends the grant, and with it the app's connections
        except ConnectorError as exc:
            log.warning("could not revoke the Xero sign-in: %s", type(exc).__name__)
        if not report.xero_revoked:
            report.problems.append(
                "I couldn't revoke the Xero sign-in (Xero did not confirm it). I've forgotten it here; to be "
                "sure, remove the app under Settings → Connected apps in Xero."
            )

    async def _shared_in_xero(self, connection: Connection, tokens: XeroTokenSet) -> bool:
        """Whether another live connection has this Xero connection or a grant of the same Xero user.

        Read before anything is undone; the connection itself is already marked disconnected, so a
        second disconnect of it running at the same time does not count it."""
        user = tokens.xero_user_id or tokens.email.casefold()
        for other in await self._store.list_connections():
            if other.id == connection.id or other.status is ConnectionStatus.DISCONNECTED:
                continue
            if connection.xero_connection_id and other.xero_connection_id == connection.xero_connection_id:
                return True
            if not user:
                continue
            try:
                theirs = await self._xero_tokens.load(other.id)
            except ConnectorError:
                return True  # unknown: keeping a grant is safer than cutting someone else off
            if theirs is not None and user in (theirs.xero_user_id, theirs.email.casefold()):
                return True
        return False

    async def _forget_ledgers(self, connection_id: str) -> None:
        await forget_ledgers(self._store, connection_id, [entity.value for entity in Entity])

    async def _forget(self, report: DisconnectReport) -> None:
        connection_id = report.connection.id
        steps: tuple[tuple[str, Callable[[str], Awaitable[None]]], ...] = (
            ("Xero tokens", self._xero_tokens.delete),
            ("Dynamics 365 tokens", self._dynamics_auth.forget),
            ("settings and run history", self._store.delete_connection),
            ("record history of `sync why`", self._forget_ledgers),
        )
        for step, call in steps:
            try:
                await call(connection_id)
            except ConnectorError as exc:
                log.error(
                    "could not delete the %s of a disconnected connection: %s", step, type(exc).__name__
                )
                report.problems.append(
                    f"I couldn't delete the stored {step}: the connector's storage did not answer."
                )
