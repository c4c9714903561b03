"""The setup as a botbuilder dialog whose state lives in our store, one per conversation.

`SetupStateBag` is a `BotState` keyed by the conversation with any `;messageid=` suffix removed: in a
channel every thread is one conversation for us, so "one setup at a time per conversation" holds
channel-wide. Its own cache key keeps it apart from the bot's ConversationState in the same turn.

The setup waits on cards, typed codes and OAuth callbacks (which arrive over HTTP and come back in as
proactive turns). `Sessions.open` loads the dialog stack and the stack is written back (eTag-checked) at
the end. A card submit is handed to the dialog (`Session.continue_with`): its `continue_dialog` looks the
verb up in the setup's table (`bot.dialogs.graph`) for the current phase and runs the action the flow
registered for it. Codes and callbacks read and replace the `SetupState` through the session directly.
Turns for one conversation in this process are serialised; across processes the eTag catches a lost
update. Cancelling the dialog (`cancel_all_dialogs`) runs the cleanup hook, so nothing stays behind.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from botbuilder.core import BotState, Storage, TurnContext
from botbuilder.dialogs import (
    Dialog,
    DialogContext,
    DialogInstance,
    DialogReason,
    DialogSet,
    DialogTurnResult,
)

from bot.dialogs.graph import Action, route
from bot.dialogs.model import SetupState
from bot.teams.turn import Turn, conversation_key
from cards.submits import Submit
from cards.verbs import CardVerb

log = logging.getLogger(__name__)

DIALOG_ID = "xero_dynamics_setup"
STATE_KEY = "setup"
# Where `Session.continue_with` leaves the card submit for the dialog, in the turn's own state.
CARD_INPUT = "XeroDynamicsConnector.SetupCardInput"
OFF_ROUTE = "That button is for another step of the setup. Use the buttons on the latest card."
CancelHook = Callable[[SetupState], Awaitable[None]]


@dataclass(frozen=True)
class CardInput:
    """A validated card submit of the setup's owner, for the dialog to route."""

    turn: Turn
    session: Session
    submit: Submit
    raw: dict[str, Any]


ActionHandler = Callable[[CardInput, SetupState], Awaitable[None]]


class SetupStateBag(BotState):  # type: ignore[misc]
    def __init__(self, storage: Storage) -> None:
        super().__init__(storage, "XeroDynamicsConnector.SetupState")

    def get_storage_key(self, turn_context: TurnContext) -> str:
        activity = turn_context.activity
        if not activity.channel_id or activity.conversation is None or not activity.conversation.id:
            raise TypeError("SetupStateBag: the activity names no channel or conversation")
        return f"setup/{conversation_key(activity.channel_id, activity.conversation.id)}"


class SetupDialog(Dialog):  # type: ignore[misc]
    def __init__(self, on_cancel: CancelHook, actions: Mapping[Action, ActionHandler]) -> None:
        super().__init__(DIALOG_ID)
        self._on_cancel = on_cancel
        missing = set(Action) - set(actions)
        if missing:
            raise ValueError(f"no handler for {sorted(missing)}")
        self._actions = dict(actions)

    async def begin_dialog(self, dialog_context: DialogContext, options: object = None) -> DialogTurnResult:
        dialog_context.active_dialog.state[STATE_KEY] = options
        return Dialog.end_of_turn

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        """A card submit: what the table says its verb does in the current phase. A continue with no
        submit (codes and callbacks come in through the session) just waits."""
        card = dialog_context.context.turn_state.pop(CARD_INPUT, None)
        state = _state_of(dialog_context.active_dialog)
        if not isinstance(card, CardInput) or state is None:
            return Dialog.end_of_turn
        found = route(state, CardVerb(card.submit.verb))
        if found is None:
            await card.turn.send_text(OFF_ROUTE)
        else:
            await self._actions[found.action](card, state)
        return Dialog.end_of_turn

    async def end_dialog(self, context: TurnContext, instance: DialogInstance, reason: DialogReason) -> None:
        if reason == DialogReason.CancelCalled:
            raw = instance.state.get(STATE_KEY) if isinstance(instance.state, dict) else None
            if isinstance(raw, dict):
                await self._on_cancel(SetupState.model_validate(raw))


class Session:
    """The conversation's dialog stack for the length of one `Sessions.open` block."""

    def __init__(self, dialog_context: DialogContext) -> None:
        self._dc = dialog_context
        self.dirty = False

    @property
    def state(self) -> SetupState | None:
        return _state_of(self._dc.active_dialog)

    async def continue_with(self, turn: Turn, submit: Submit, raw: dict[str, Any]) -> None:
        """Hand a card submit to the setup's dialog, which routes it through the table."""
        self._dc.context.turn_state[CARD_INPUT] = CardInput(turn, self, submit, raw)
        try:
            await self._dc.continue_dialog()
        finally:
            self._dc.context.turn_state.pop(CARD_INPUT, None)

    async def begin(self, state: SetupState) -> None:
        await self._dc.begin_dialog(DIALOG_ID, state.model_dump(mode="json"))
        self.dirty = True

    def save(self, state: SetupState) -> None:
        active = self._dc.active_dialog
        if active is None or active.id != DIALOG_ID:
            raise RuntimeError("no setup is active in this conversation")
        active.state[STATE_KEY] = state.model_dump(mode="json")
        self.dirty = True

    async def end(self) -> None:
        """The setup finished: forget it (what it made is kept elsewhere)."""
        await self._dc.end_dialog()
        self.dirty = True

    async def cancel(self) -> None:
        """Stop the setup; the dialog's cleanup hook discards what it had gathered."""
        await self._dc.cancel_all_dialogs()
        self.dirty = True


def _state_of(active: DialogInstance | None) -> SetupState | None:
    if active is None or active.id != DIALOG_ID:
        return None
    raw = active.state.get(STATE_KEY) if isinstance(active.state, dict) else None
    return SetupState.model_validate(raw) if isinstance(raw, dict) else None


class Sessions:
    def __init__(self, storage: Storage, on_cancel: CancelHook, actions: Mapping[Action, ActionHandler]) -> None:
        self._bag = SetupStateBag(storage)
        self._dialogs = DialogSet(self._bag.create_property("dialog_state"))
        self._dialogs.add(SetupDialog(on_cancel, actions))
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    @asynccontextmanager
    async def open(self, context: TurnContext) -> AsyncIterator[Session]:
        """Load, hand over, save. An exception inside leaves the stored setup as it was."""
        key: Any = self._bag.get_storage_key(context)
        async with self._lock(str(key)):
            await self._bag.load(context, True)
            session = Session(await self._dialogs.create_context(context))
            yield session
            if session.dirty:
                await self._bag.save_changes(context, True)

    async def peek(self, context: TurnContext) -> SetupState | None:
        """The conversation's setup, read only (for deciding whether a message is for it)."""
        await self._bag.load(context, True)
        return Session(await self._dialogs.create_context(context)).state
