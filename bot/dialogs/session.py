"""The setup as a botbuilder dialog whose state lives in our store, one per conversation.

`SetupStateBag` is a `BotState` keyed by the conversation with any `;messageid=` suffix removed: in a
channel every thread is one conversation for us, so "one setup at a time per conversation" holds
channel-wide. Its own cache key keeps it apart from the bot's ConversationState in the same turn.

The setup waits on cards, typed codes and OAuth callbacks (which arrive over HTTP and come back in as
proactive turns), so the dialog does not drive itself: `Sessions.open` loads the dialog stack, the
caller reads and replaces the `SetupState`, and the stack is written back (eTag-checked) at the end.
Turns for one conversation in this process are serialised; across processes the eTag catches a lost
update. Cancelling the dialog (`cancel_all_dialogs`) runs the cleanup hook, so nothing stays behind.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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

from bot.dialogs.model import SetupState
from bot.teams.turn import conversation_key

log = logging.getLogger(__name__)

DIALOG_ID = "xero_dynamics_setup"
STATE_KEY = "setup"
CancelHook = Callable[[SetupState], Awaitable[None]]


class SetupStateBag(BotState):  # type: ignore[misc]
    def __init__(self, storage: Storage) -> None:
        super().__init__(storage, "XeroDynamicsConnector.SetupState")

    def get_storage_key(self, turn_context: TurnContext) -> str:
        activity = turn_context.activity
        if not activity.channel_id or activity.conversation is None or not activity.conversation.id:
            raise TypeError("SetupStateBag: the activity names no channel or conversation")
        return f"setup/{conversation_key(activity.channel_id, activity.conversation.id)}"


class SetupDialog(Dialog):  # type: ignore[misc]
    def __init__(self, on_cancel: CancelHook) -> None:
        super().__init__(DIALOG_ID)
        self._on_cancel = on_cancel

    async def begin_dialog(self, dialog_context: DialogContext, options: object = None) -> DialogTurnResult:
        dialog_context.active_dialog.state[STATE_KEY] = options
        return Dialog.end_of_turn

    async def continue_dialog(self, dialog_context: DialogContext) -> DialogTurnResult:
        # Input arrives through Sessions (cards, codes, callbacks); a bare continue just waits.
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
        active = self._dc.active_dialog
        if active is None or active.id != DIALOG_ID:
            return None
        raw = active.state.get(STATE_KEY) if isinstance(active.state, dict) else None
        return SetupState.model_validate(raw) if isinstance(raw, dict) else None

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


class Sessions:
    def __init__(self, storage: Storage, on_cancel: CancelHook) -> None:
        self._bag = SetupStateBag(storage)
        self._dialogs = DialogSet(self._bag.create_property("dialog_state"))
        self._dialogs.add(SetupDialog(on_cancel))
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
