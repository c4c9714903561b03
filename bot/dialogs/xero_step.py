"""Connect to Xero: our own OAuth 2.0 (authorization code + PKCE S256), then the organisation.

The browser leg: `/oauth/xero/start?link=` makes a PKCE pair and a single-use state and sends the
browser to Xero; `/oauth/xero/callback` exchanges the code. The tokens stay provisional (encrypted,
10 minutes) until the Teams user proves the login was theirs; only then are they stored for the
setup and the organisations read. Failures leave Xero's side untouched: revoking the new refresh
token would also cut the user's other connections to this app, so we only forget it.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from bot.dialogs.failures import SigninFailure
from bot.dialogs.graph import Event, enter
from bot.dialogs.kit import SetupKit
from bot.dialogs.model import Done, Mode, OrgOption, Provider, SetupState, StepResult, XeroChoice
from bot.dialogs.oauth_state import Binding
from bot.errors import ConnectorError, OAuthFlowError
from bot.storage.base import ConnectionStatus
from bot.sync.xero_auth import XeroTokenSet
from bot.sync.xero_models import XeroConnection
from bot.teams.turn import Turn

log = logging.getLogger(__name__)

ORGANISATION = "ORGANISATION"


class XeroStep:
    def __init__(self, kit: SetupKit) -> None:
        self._kit = kit
        self._oauth = kit.deps.xero_oauth

    async def authorize_url(self, binding: Binding) -> str:
        """Where `/oauth/xero/start` sends the browser: a fresh PKCE pair and single-use state."""
        verifier, challenge = self._oauth.new_pkce()
        state = await self._kit.states.begin_flow(binding, {"verifier": verifier})
        return self._oauth.authorize_url(state, challenge, self._kit.redirect_uri(Provider.XERO))

    async def on_callback(self, state: SetupState, code: str, secret: dict[str, Any]) -> tuple[SetupState, str]:
        """Exchange the code; keep the tokens pending. Returns the setup and the code for the page.

        Raises OAuthFlowError when Xero refuses (the caller reports it)."""
        verifier = secret.get("verifier")
        if not isinstance(verifier, str):
            raise OAuthFlowError(SigninFailure.INVALID_STATE, "The sign-in could not be matched to the setup.")
        try:
            tokens = await self._oauth.exchange_code(code, verifier, self._kit.redirect_uri(Provider.XERO))
        except ConnectorError as exc:
            log.info("Xero code exchange failed for setup %s: %s", state.setup_id, type(exc).__name__)
            raise OAuthFlowError(SigninFailure.PROVIDER_ERROR, "Xero did not accept the sign-in. Please try again.") from exc
        await self._kit.states.put_pending(state.setup_id, Provider.XERO, {"tokens": tokens.model_dump(mode="json")})
        return self._kit.await_code(state, Provider.XERO, await self._would_connect(tokens))

    async def _would_connect(self, tokens: XeroTokenSet) -> str:
        """The organisations this sign-in allowed, for the card before the code is typed (issue 14)."""
        try:
            connections = await self._oauth.connections(tokens.access_token, tokens.auth_event_id or None)
        except ConnectorError:
            return tokens.email
        names = [c.tenant_name or c.tenant_id for c in connections if c.tenant_type == ORGANISATION]
        return ", ".join(names) or tokens.email

    async def on_verified(self, turn: Turn, state: SetupState, secret: dict[str, Any]) -> StepResult:
        """The Teams user proved the login: read the organisations (a reconnect: check and finish)."""
        try:
            tokens = XeroTokenSet.model_validate(secret.get("tokens"))
        except ValidationError:
            return await self._kit.fail(turn, state, Provider.XERO, "The sign-in could not be read.")
        try:
            connections = await self._oauth.connections(tokens.access_token, tokens.auth_event_id or None)
        except ConnectorError:
            return await self._kit.fail(turn, state, Provider.XERO, "Xero didn't list your organisations.")
        orgs = [c for c in connections if c.tenant_type == ORGANISATION]
        if state.mode is Mode.RECONNECT_XERO:
            return await self._reconnected(turn, state, tokens, orgs)
        if not orgs:
            return await self._kit.fail(
                turn, state, Provider.XERO, "You didn't allow access to any Xero organisation."
            )
        taken = {
            c.xero_tenant_id
            for c in await self._kit.deps.store.list_connections(state.conversation_key)
            if c.status is not ConnectionStatus.DISCONNECTED
        }
        available = [o for o in orgs if o.tenant_id not in taken]
        if not available:
            names = ", ".join(o.tenant_name or o.tenant_id for o in orgs)
            return await self._kit.fail(
                turn, state, Provider.XERO, f"{names} already has a connection here. Allow another organisation."
            )
        await self._kit.deps.xero_tokens.save(state.tokens_id, tokens)
        options = tuple(
            OrgOption(tenant_id=o.tenant_id, name=o.tenant_name or o.tenant_id, xero_connection_id=o.id)
            for o in available
        )
        if len(options) == 1:
            return await self.choose(turn, state.but(xero_orgs=options), options[0].tenant_id)
        chooser = enter(state, Event.ORGS, xero_orgs=options, verification=None, problem="")
        await self._kit.show(turn, chooser)
        return chooser

    async def choose(self, turn: Turn, state: SetupState, tenant_id: str) -> SetupState:
        """The organisation to sync: read its name and timezone, then on to Dynamics 365."""
        option = next((o for o in state.xero_orgs if o.tenant_id == tenant_id), None)
        if option is None:
            await turn.send_text("That organisation isn't one of the choices. Pick one from the card.")
            return state
        try:
            org = await self._kit.deps.xero.organisation(state.tokens_id, tenant_id)
        except ConnectorError:
            return await self._kit.fail(turn, state, Provider.XERO, f"Xero didn't let me read {option.name}.")
        choice = XeroChoice(
            tenant_id=tenant_id,
            xero_connection_id=option.xero_connection_id,
            org_name=org.name or option.name,
            timezone=org.iana_timezone or "",
        )
        chosen = state.but(xero=choice, xero_orgs=(), verification=None, problem="")
        await self._warn_if_connected_elsewhere(turn, state, tenant_id)
        nxt = await self._kit.signin(chosen, Provider.DYNAMICS)
        await self._kit.show(turn, nxt)
        return nxt

    async def _warn_if_connected_elsewhere(self, turn: Turn, state: SetupState, tenant_id: str) -> None:
        """Issue 14: another chat of this Teams tenant already syncs this organisation. Said without
        naming that chat or its connection (this conversation may not see it)."""
        for other in await self._kit.deps.store.list_tenant_connections(state.tenant_id):
            if (
                other.xero_tenant_id == tenant_id
                and other.conversation_key != state.conversation_key
                and other.status is not ConnectionStatus.DISCONNECTED
            ):
                await turn.send_text(
                    "ℹ️ This Xero organisation is already connected in another chat of your organisation. "
                    "Both connections will sync it; disconnecting one leaves the other's Xero sign-in in place."
                )
                return

    async def _reconnected(
        self, turn: Turn, state: SetupState, tokens: XeroTokenSet, orgs: list[XeroConnection]
    ) -> StepResult:
        store = self._kit.deps.store
        connection = await store.get_connection(state.connection_id)
        if connection is None:
            return await self._kit.fail(turn, state, Provider.XERO, "This connection no longer exists.")
        match = next((o for o in orgs if o.tenant_id == connection.xero_tenant_id), None)
        if match is None:
            return await self._kit.fail(
                turn,
                state,
                Provider.XERO,
                f"That sign-in doesn't include {connection.xero_org_name or 'the organisation of this connection'}. "
                "Sign in with a Xero user who can access it, and allow it.",
            )
        # Proven and checked: only now replace the connection's tokens.
        await self._kit.deps.xero_tokens.save(connection.id, tokens)
        choice = XeroChoice(
            tenant_id=match.tenant_id,
            xero_connection_id=match.id,
            org_name=connection.xero_org_name or match.tenant_name,
            timezone=connection.xero_timezone,
        )
        return Done(state.but(xero=choice, verification=None, problem=""))
