"""Pause, resume and disconnect from chat: acknowledged at once, done in the background, card updated.

Pausing and resuming write to the store and then to the Connector row in Dynamics 365 (`SyncService`);
disconnecting revokes sign-ins at Xero (`Disconnector`). Either can take seconds, so the turn answers
with "Pausing…" and the same card shows the outcome when the work is done.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import ConnectorError, ValidationFailed
from bot.storage.base import Connection, ConnectionStatus, Store
from bot.sync.service import SyncService
from bot.teams.authz import Authorizer, Denied, Permission, Requester
from bot.teams.background import BackgroundTasks
from bot.teams.disconnect import Disconnector, DisconnectReport
from bot.teams.notifier import TeamsNotifier
from bot.teams.runcards import card_ref
from bot.teams.turn import Turn
from cards import (
    DisconnectCardData,
    MessageCardData,
    MessageTone,
    parse_submit,
    render_disconnect_card,
    render_message_card,
)
from cards.problem_words import error_words
from cards.submits import CancelDisconnectSubmit, ConfirmDisconnectSubmit

log = logging.getLogger(__name__)


class Lifecycle:
    def __init__(
        self,
        store: Store,
        sync: SyncService,
        notifier: TeamsNotifier,
        disconnector: Disconnector,
        authorizer: Authorizer,
        tasks: BackgroundTasks,
    ) -> None:
        self._store = store
        self._sync = sync
        self._notifier = notifier
        self._sender = notifier.sender
        self._disconnector = disconnector
        self._authz = authorizer
        self._tasks = tasks

    async def pause(self, turn: Turn, requester: Requester, connection: Connection) -> None:
        if connection.status == ConnectionStatus.PAUSED:
            await turn.send_card(
                message(
                    MessageTone.INFO, f"{connection.name} is already paused", "Say resume to start it again."
                )
            )
            return
        ack = await turn.send_card(message(MessageTone.INFO, f"Pausing {connection.name}…", ""))
        by = requester.user_name or "someone"

        async def pause() -> dict[str, Any]:
            await self._sync.pause(connection.id, by=by)
            return message(
                MessageTone.SUCCESS,
                f"{connection.name} is paused",
                f"Paused by {by}. No scheduled runs until someone says resume; a run under way finishes.",
            )

        self._later(turn, ack, pause, retry=f"pause {connection.name}")

    async def resume(self, turn: Turn, requester: Requester, connection: Connection) -> None:
        if connection.status != ConnectionStatus.PAUSED:
            why = (
                "It needs reconnecting first: see its status."
                if connection.status == ConnectionStatus.NEEDS_RECONNECTION
                else "It runs on its schedule."
            )
            await turn.send_card(message(MessageTone.INFO, f"{connection.name} isn't paused", why))
            return
        ack = await turn.send_card(message(MessageTone.INFO, f"Resuming {connection.name}…", ""))
        by = requester.user_name or "someone"

        async def resume() -> dict[str, Any]:
            resumed = await self._sync.resume(connection.id, by=by)
            if resumed.status != ConnectionStatus.ACTIVE:
                return message(
                    MessageTone.WARNING, f"{connection.name} didn't resume", "Its status changed meanwhile."
                )
            return message(
                MessageTone.SUCCESS,
                f"{connection.name} is running again",
                f"Resumed by {by}. The next run starts now and catches up on what changed meanwhile.",
            )

        self._later(turn, ack, resume, retry=f"resume {connection.name}")

    async def ask_disconnect(self, turn: Turn, connection: Connection) -> None:
        await turn.send_card(
            render_disconnect_card(
                DisconnectCardData(
                    connection_id=connection.id,
                    connection_name=connection.name,
                    xero_org_name=connection.xero_org_name,
                    dynamics_env_name=connection.dataverse_env_name,
                )
            )
        )

    async def on_disconnect_card(self, turn: Turn, value: dict[str, Any]) -> None:
        submit = parse_submit(value)
        if not isinstance(submit, ConfirmDisconnectSubmit | CancelDisconnectSubmit):
            raise ValidationFailed("This card is out of date. Type the command again to get a fresh one.")
        requester = Requester.from_turn(turn)
        try:
            connection = await self._authz.require(
                await self._store.get_connection(submit.connection_id), requester, Permission.MANAGE
            )
        except Denied as denied:
            await turn.send_text(str(denied))
            return
        if isinstance(submit, CancelDisconnectSubmit):
            await _replace(turn, message(MessageTone.INFO, f"{connection.name} stays connected", ""))
            return
        ack = await _replace(turn, message(MessageTone.INFO, f"Disconnecting {connection.name}…", ""))
        by = requester.user_name or "someone"

        async def disconnect() -> dict[str, Any]:
            report = await self._disconnector.disconnect(connection.id, by)
            if report is None:
                return message(MessageTone.INFO, f"{connection.name} was already disconnected", "")
            try:
                await self._notifier.book.forget(connection.id)
            except ConnectorError:
                log.warning("could not forget the cards of a disconnected connection")
            return _disconnected(report, by)

        self._later(turn, ack, disconnect, retry="")

    def _later(
        self, turn: Turn, ack_id: str, work: Callable[[], Awaitable[dict[str, Any]]], *, retry: str
    ) -> None:
        """Run `work` in the background; its card replaces the acknowledgement `ack_id`."""
        ref = card_ref(turn, ack_id)

        async def run() -> None:
            try:
                card = await work()
            except ConnectorError as exc:
                log.warning("a command failed in the background: %s", type(exc).__name__)
                card = render_message_card(
                    MessageCardData(
                        title="That didn't work",
                        text=f"{error_words(exc)}. Nothing was lost; try again in a moment.",
                        tone=MessageTone.ERROR,
                        retry_command=retry,
                    )
                )
            if not ref.activity_id:
                await self._sender.send_card(ref.conversation_key, card, thread_id=ref.thread_id)
                return
            await self._sender.update_card(
                ref.conversation_key, ref.activity_id, card, thread_id=ref.thread_id
            )

        self._tasks.spawn(run(), name="command")


def message(tone: MessageTone, title: str, text: str) -> dict[str, Any]:
    return render_message_card(MessageCardData(title=title, text=text, tone=tone))


async def _replace(turn: Turn, card: dict[str, Any]) -> str:
    """Replace the card that was clicked (so its buttons cannot be pressed twice); its id."""
    if turn.reply_to_id:
        await turn.update_card(turn.reply_to_id, card)
        return turn.reply_to_id
    return await turn.send_card(card)


def _disconnected(report: DisconnectReport, by: str) -> dict[str, Any]:
    name = report.connection.name
    lines = [
        f"Disconnected by {by}. Scheduled runs stopped and the sign-ins to Xero and Dynamics 365 are forgotten; "
        "what is already in Dynamics 365 stays."
    ]
    lines += [*report.notes, *report.problems]
    tone = MessageTone.SUCCESS if report.complete else MessageTone.WARNING
    return message(tone, f"{name} is disconnected", "\n".join(lines))
