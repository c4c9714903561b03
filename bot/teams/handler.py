"""The Teams activity handler: saves where we can talk later, welcomes, and hands turns to the router."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botbuilder.core import ConversationState, InvokeResponse, TurnContext
from botbuilder.core.activity_handler import _InvokeResponseException
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import ChannelAccount

from bot.storage.base import ConversationStore
from bot.teams.router import Router, submitted_verb
from bot.teams.turn import Turn

log = logging.getLogger(__name__)

WelcomeSender = Callable[[Turn], Awaitable[None]]
VerifyStateHandler = Callable[[Turn, str], Awaitable[bool]]


class ConnectorBot(TeamsActivityHandler):  # type: ignore[misc]
    def __init__(
        self,
        router: Router,
        conversations: ConversationStore,
        conversation_state: ConversationState,
        welcome: WelcomeSender,
        verify_state: VerifyStateHandler | None = None,
    ) -> None:
        super().__init__()
        self._router = router
        self._conversations = conversations
        self._state = conversation_state
        self._welcome = welcome
        self._verify_state = verify_state

    async def on_turn(self, turn_context: TurnContext) -> None:
        turn = Turn(turn_context)
        activity = turn_context.activity
        if activity.conversation is not None and activity.service_url:
            # Every activity refreshes the reference (the service URL can move) for later notifications.
            await self._conversations.save_reference(turn.reference())
        await super().on_turn(turn_context)
        await self._state.save_changes(turn_context)

    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await self._router.handle_message(Turn(turn_context))

    async def on_installation_update_add(self, turn_context: TurnContext) -> None:
        await self._welcome(Turn(turn_context))

    async def on_members_added_activity(
        self, members_added: list[ChannelAccount], turn_context: TurnContext
    ) -> None:
        bot_id = turn_context.activity.recipient.id if turn_context.activity.recipient else None
        # Welcome once, when the bot itself joins (installationUpdate also fires; dedupe on conversation).
        if any(m.id == bot_id for m in members_added or []):
            await self._welcome(Turn(turn_context))

    async def on_adaptive_card_invoke(self, turn_context: TurnContext, invoke_value: Any) -> Any:
        from botbuilder.schema import AdaptiveCardInvokeResponse

        action = getattr(invoke_value, "action", None)
        verb = str(getattr(action, "verb", "") or "")
        data = getattr(action, "data", None)
        payload: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
        if submitted_verb({"verb": verb}) is None:
            return AdaptiveCardInvokeResponse(status_code=400, type="application/vnd.microsoft.error", value={})
        card = await self._router.handle_invoke(Turn(turn_context), verb, payload)
        if card is None:
            return AdaptiveCardInvokeResponse(
                status_code=200, type="application/vnd.microsoft.activity.message", value="Done."
            )
        return AdaptiveCardInvokeResponse(
            status_code=200, type="application/vnd.microsoft.card.adaptive", value=card
        )

    async def on_teams_signin_verify_state(self, turn_context: TurnContext) -> InvokeResponse:
        # The sign-in popup finished: Teams sends the code our callback page passed to notifySuccess.
        value = turn_context.activity.value
        state = value.get("state") if isinstance(value, dict) else None
        # botbuilder ignores what this method returns and answers 200; only this exception sets the status.
        if self._verify_state is None or not isinstance(state, str) or len(state) > 200:
            raise _InvokeResponseException(400)
        if not await self._verify_state(Turn(turn_context), state):
            raise _InvokeResponseException(412)
        return InvokeResponse(status=200)
