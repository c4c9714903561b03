"""The Teams activity handler: saves where we can talk later, welcomes, and hands turns to the router."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from botbuilder.core import ConversationState, InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.schema import (
    ActivityTypes,
    AdaptiveCardInvokeResponse,
    AdaptiveCardInvokeValue,
    ChannelAccount,
    ConversationReference,
)

from bot.errors import ValidationFailed
from bot.storage.base import ConversationStore
from bot.teams.router import Router, submitted_verb
from bot.teams.turn import Turn

log = logging.getLogger(__name__)

WelcomeSender = Callable[[Turn], Awaitable[None]]
VerifyStateHandler = Callable[[Turn, str], Awaitable[bool]]

CARD_ACTION = "adaptiveCard/action"
CARD_TYPE = "application/vnd.microsoft.card.adaptive"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
ERROR_TYPE = "application/vnd.microsoft.error"
# Invokes left to botbuilder's dispatch, which calls the methods overridden here (the sign-in popup).
VERIFY_STATE = "signin/verifyState"
_BOTBUILDER_INVOKES = frozenset({"signin/tokenExchange"})
# How long a message may skip rewriting a reference this process saved unchanged (see SavedReferences).
REFERENCE_TTL_SECONDS = 60.0
_MAX_REMEMBERED = 10_000


class SavedReferences:
    """The conversation references this process saved lately, so an unchanged one is not rewritten on
    every message (a store write each turn, for the same value).

    The comparison leaves out only the incoming activity's id, which differs every turn and which
    proactive sends do not use (botbuilder gives a continuation activity an id of its own). Anything
    else that changed (service URL, names, tenant, conversation) is written at once; only messages
    skip, so an install or membership event always rewrites the reference, which clears `removed`
    after the bot is added back; `updated_at` stays at most the TTL old."""

    def __init__(
        self,
        ttl: float = REFERENCE_TTL_SECONDS,
        max_entries: int = _MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._saved: dict[str, tuple[float, object]] = {}

    def unchanged(self, key: str, fingerprint: object) -> bool:
        entry = self._saved.get(key)
        return entry is not None and self._clock() - entry[0] < self._ttl and entry[1] == fingerprint

    def remember(self, key: str, fingerprint: object) -> None:
        self._saved.pop(key, None)
        if len(self._saved) >= self._max:
            # Insertion order is save order: forget the oldest.
            del self._saved[next(iter(self._saved))]
        self._saved[key] = (self._clock(), fingerprint)


def reference_fingerprint(turn: Turn) -> object:
    """What the stored reference is made of, minus the activity id (msrest models compare by value)."""
    ref: ConversationReference = copy.copy(TurnContext.get_conversation_reference(turn.activity))
    ref.activity_id = None
    return (turn.tenant_id, turn.conversation_type, ref)


class ConnectorBot(TeamsActivityHandler):  # type: ignore[misc]
    def __init__(
        self,
        router: Router,
        conversations: ConversationStore,
        conversation_state: ConversationState,
        welcome: WelcomeSender,
        verify_state: VerifyStateHandler | None = None,
        saved_references: SavedReferences | None = None,
    ) -> None:
        super().__init__()
        self._router = router
        self._conversations = conversations
        self._state = conversation_state
        self._welcome = welcome
        self._verify_state = verify_state
        self._saved_references = saved_references or SavedReferences()

    async def on_turn(self, turn_context: TurnContext) -> None:
        turn = Turn(turn_context)
        activity = turn_context.activity
        if activity.conversation is not None and activity.service_url:
            # Activities refresh the reference (the service URL can move) for later notifications.
            await self._save_reference(turn)
        await super().on_turn(turn_context)
        await self._state.save_changes(turn_context)

    async def _save_reference(self, turn: Turn) -> None:
        key = turn.conversation_key
        fingerprint = reference_fingerprint(turn)
        if turn.activity.type == ActivityTypes.message and self._saved_references.unchanged(key, fingerprint):
            return
        await self._conversations.save_reference(turn.reference())
        self._saved_references.remember(key, fingerprint)

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

    async def on_invoke_activity(self, turn_context: TurnContext) -> InvokeResponse:
        name = turn_context.activity.name
        if name == CARD_ACTION:
            return await self._card_action(turn_context)
        if name == VERIFY_STATE:
            # Answered here, not through botbuilder's dispatch: it ignores what the handler returns and
            # sets another status only through a private exception class.
            return await self._verify_state_invoke(turn_context)
        if name in _BOTBUILDER_INVOKES:
            return await super().on_invoke_activity(turn_context)
        # botbuilder answers every other invoke 501, a server error. The manifest declares no message
        # extension, task module, tab or config page, so these are not meant for us: acknowledge
        # politely, as for an activity type we do not know, and send nothing.
        log.info("Acknowledged an invoke the bot does not handle (%s)", _printable(name))
        return InvokeResponse(status=int(HTTPStatus.OK))

    async def _card_action(self, turn_context: TurnContext) -> InvokeResponse:
        """An Action.Execute: the value's shape is checked here, since botbuilder's own parser crashes
        on some shapes (an `action` that is not an object) and writes error bodies no one can serialize."""
        value = turn_context.activity.value
        if not isinstance(value, dict):
            return _refused("BadRequest", "The value property is missing or not an object.")
        action = value.get("action")
        if not isinstance(action, dict):
            return _refused("BadRequest", "The action property is missing or not an object.")
        if action.get("type") != "Action.Execute":
            return _refused("NotSupported", "Only Action.Execute is supported.")
        invoke_value = AdaptiveCardInvokeValue(
            action=action, authentication=value.get("authentication"), state=value.get("state")
        )
        answer = await self.on_adaptive_card_invoke(turn_context, invoke_value)
        return InvokeResponse(status=int(HTTPStatus.OK), body=_card_answer(answer))

    async def on_adaptive_card_invoke(
        self, turn_context: TurnContext, invoke_value: AdaptiveCardInvokeValue
    ) -> AdaptiveCardInvokeResponse:
        action = getattr(invoke_value, "action", None)
        # `action` is the JSON object Teams sent (a dict, as botbuilder's own dispatch passes it too).
        verb = submitted_verb({"verb": _field(action, "verb")})
        data = _field(action, "data")
        if verb is None:
            return _card_response(400, ERROR_TYPE, {"code": "BadRequest", "message": "The verb is missing."})
        payload: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
        try:
            card = await self._router.handle_invoke(Turn(turn_context), verb, payload)
        except ValidationFailed as exc:
            # As for an Action.Submit, the person is told what was wrong; nothing was changed.
            return _card_response(200, MESSAGE_TYPE, f"⚠️ {exc}")
        if card is None:
            return _card_response(200, MESSAGE_TYPE, "Done.")
        if isinstance(card, str):
            # What the handler said (a refusal reads as one), not a blanket "Done." (issue 14).
            return _card_response(200, MESSAGE_TYPE, card)
        return _card_response(200, CARD_TYPE, card)

    async def _verify_state_invoke(self, turn_context: TurnContext) -> InvokeResponse:
        # The sign-in popup finished: Teams sends the code our callback page passed to notifySuccess.
        value = turn_context.activity.value
        state = value.get("state") if isinstance(value, dict) else None
        if self._verify_state is None or not isinstance(state, str) or len(state) > 200:
            return InvokeResponse(status=int(HTTPStatus.BAD_REQUEST))
        if not await self._verify_state(Turn(turn_context), state):
            return InvokeResponse(status=int(HTTPStatus.PRECONDITION_FAILED))
        return InvokeResponse(status=int(HTTPStatus.OK))


def _field(action: object, name: str) -> object:
    """A field of the clicked action, whether botbuilder gives the JSON object (it does) or a model."""
    if isinstance(action, Mapping):
        return action.get(name)
    return getattr(action, name, None)


def _card_response(status: int, kind: str, value: object) -> AdaptiveCardInvokeResponse:
    return AdaptiveCardInvokeResponse(status_code=status, type=kind, value=value)


def _card_answer(answer: object) -> object:
    """The card invoke protocol's body, written by hand: botbuilder's serializer declares `value` an
    object and fails on a message's text."""
    if isinstance(answer, AdaptiveCardInvokeResponse):
        return {"statusCode": answer.status_code, "type": answer.type, "value": answer.value}
    return answer


def _refused(code: str, message: str) -> InvokeResponse:
    """A malformed Action.Execute: HTTP 400 with the protocol's error body (as botbuilder would answer,
    but with a body that can be written)."""
    body = {"statusCode": 400, "type": ERROR_TYPE, "value": {"code": code, "message": message}}
    return InvokeResponse(status=int(HTTPStatus.BAD_REQUEST), body=body)


def _printable(name: object) -> str:
    # The name comes from the request: quoted and cut short, so it cannot forge or flood log lines.
    return repr(name)[:80]
