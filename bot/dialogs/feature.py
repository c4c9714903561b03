"""`SetupFeature`: the conversational setup as the composition root wires it.

    feature = SetupFeature(SetupDeps(...), SetupOptions())
    feature.register(router, connection_settings=ops_settings_submit)   # commands, verbs, interceptor
    app.add_routes(feature.routes())                                      # /oauth/... start + callback
    ConnectorBot(..., verify_state=feature.verify_state)                  # Teams' sign-in popup
    welcome button -> feature.start_setup(turn); Reconnect buttons -> feature.reconnect(turn, id, provider)

The settings card is shared with the settings of an existing connection (same verbs): a submit naming a
`setup_id` is the setup's, one naming a `connection_id` goes to `connection_settings`. The setup registers
those verbs, once; the operations feature's handler is handed in at `register`, never registered a second
time on the router (which would refuse it).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.dialogs.callbacks import OAuthRoutes
from bot.dialogs.deps import SetupDeps, SetupOptions
from bot.dialogs.flow import SetupFlow
from bot.dialogs.model import Provider
from bot.dialogs.oauth_state import normalise_code
from bot.teams.router import Router, SubmitHandler
from bot.teams.turn import Turn
from cards.verbs import CardVerb

log = logging.getLogger(__name__)

SETUP_VERBS: tuple[CardVerb, ...] = (
    CardVerb.SETUP_CANCEL,
    CardVerb.XERO_RETRY,
    CardVerb.XERO_PICK_ORG,
    CardVerb.VERIFY_CODE,
    CardVerb.SOLUTION_CHECK_AGAIN,
    CardVerb.SOLUTION_INSTALL,
    CardVerb.SOLUTION_CONTINUE,
    CardVerb.DYNAMICS_RETRY,
    CardVerb.DYNAMICS_PICK_ENV,
)
SHARED_VERBS: tuple[CardVerb, ...] = (CardVerb.SETTINGS_SUBMIT, CardVerb.SETTINGS_CANCEL)


class SetupFeature:
    def __init__(self, deps: SetupDeps, options: SetupOptions | None = None) -> None:
        self._flow = SetupFlow(deps, options or SetupOptions())
        self._oauth = OAuthRoutes(self._flow)
        self._connection_settings: SubmitHandler | None = None

    @property
    def flow(self) -> SetupFlow:
        return self._flow

    def register(self, router: Router, *, connection_settings: SubmitHandler | None = None) -> None:
        """Commands `connect` and `cancel`, every setup card verb, and the typed-code interceptor."""
        router.on_command("connect", self._on_connect)
        router.on_command("cancel", self._on_cancel)
        router.add_interceptor(self._intercept)
        router.on_verb(CardVerb.SETUP_START.value, self._on_start_button)
        for verb in SETUP_VERBS:
            router.on_verb(verb.value, self._flow.on_submit)
        for verb in SHARED_VERBS:
            router.on_verb(verb.value, self._on_shared_card)
        self._connection_settings = connection_settings

    def routes(self) -> list[web.RouteDef]:
        """GET /oauth/xero/start, /oauth/xero/callback, /oauth/dynamics/start, /oauth/dynamics/callback."""
        return self._oauth.routes()

    async def verify_state(self, turn: Turn, code: str) -> bool:
        """ConnectorBot's `signin/verifyState` hook: the code our callback page gave Teams' popup."""
        return await self._flow.verify(turn, code)

    async def start_setup(self, turn: Turn) -> None:
        """Start a setup in the turn's conversation (the welcome card's button, `connect`)."""
        await self._flow.start(turn)

    async def reconnect(self, turn: Turn, connection_id: str, provider: str | Provider) -> None:
        """Sign in to one provider again for an existing connection of this conversation.

        The caller checks that the person may do it (the connection's owner or a team owner)."""
        await self._flow.reconnect(turn, connection_id, Provider(provider))

    # -- router handlers -----------------------------------------------------------------------------

    async def _on_connect(self, turn: Turn, _args: list[str]) -> None:
        await self._flow.start(turn)

    async def _on_start_button(self, turn: Turn, _value: dict[str, Any]) -> None:
        await self._flow.start(turn)

    async def _on_shared_card(self, turn: Turn, value: dict[str, Any]) -> None:
        if "setup_id" in value:
            await self._flow.on_submit(turn, value)
        elif self._connection_settings is not None:
            await self._connection_settings(turn, value)
        else:
            await turn.send_text("This form is out of date. Type the command again to get a fresh one.")

    async def _on_cancel(self, turn: Turn, _args: list[str]) -> None:
        await self._flow.cancel(turn)

    async def _intercept(self, turn: Turn) -> bool:
        """A typed verification code ("123-456") while a sign-in waits for one is the setup's."""
        if turn.value is not None and not turn.text:
            return False
        text = turn.text
        if normalise_code(text) is None or not await self._flow.has_pending_code(turn):
            return False
        await self._flow.verify(turn, text)
        return True
