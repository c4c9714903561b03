"""`now`: answer at once with a progress card, then let the run it starts (or joins) take the card over.

    turn:        progress card "Starting" -> remembered as pending for the connection -> turn ends
    background:  SyncService.run_now (may wait for a worker to pick the run up)
                 started -> the run's start claimed the pending card (TeamsNotifier.run_started): nothing to do
                 joined  -> the card is bound to the run under way; its result lands on it
                 refused -> the card says why (paused, needs reconnecting, daily allowance used)
                 queued  -> the card says so; the run that starts next takes it over

Every later change of the card goes through the conversation's delivery queue, after what the notifier
queued before, and checks the card book first, so a late "already running" never hides a result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from bot.errors import ConnectorError
from bot.storage.base import Connection, RunOutcome, RunRecord, Store, utcnow
from bot.sync.service import SyncService
from bot.teams.authz import Requester
from bot.teams.background import BackgroundTasks
from bot.teams.notifier import TeamsNotifier, progress_card, result_card
from bot.teams.refusals import refusal_sentence
from bot.teams.runcards import CardRef, card_ref
from bot.teams.turn import Turn
from cards import MessageCardData, MessageTone, render_message_card

log = logging.getLogger(__name__)

REQUESTED = "Starting: waiting for the sync to begin"
JOINED = "Already running: its result will show here"
QUEUED = "Queued: starts as soon as a worker is free"
# On-demand runs one person other than the creator may ask for per connection and UTC day (issue 14):
# anyone in the chat may sync now, but not spend the whole plan's daily allowance alone.
OTHERS_ON_DEMAND_PER_DAY = 3


class RunNow:
    def __init__(
        self,
        store: Store,
        sync: SyncService,
        notifier: TeamsNotifier,
        tasks: BackgroundTasks,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._sync = sync
        self._notifier = notifier
        self._book = notifier.book
        self._sender = notifier.sender
        self._tasks = tasks
        self._clock = clock

    async def start(self, turn: Turn, requester: Requester, connection: Connection) -> None:
        running = await self._sync.running(connection.id)
        if running is None and not await self._within_own_share(requester, connection):
            text = (
                f"You've asked for {OTHERS_ON_DEMAND_PER_DAY} on-demand syncs of this connection today, the most "
                "one person other than its creator may. Scheduled syncs go on; the creator can still sync now."
            )
            await turn.send_card(_message(MessageTone.WARNING, "The sync didn't start", text, connection))
            return
        if running is not None:
            card = progress_card(connection, running, JOINED)
        else:
            asked = RunRecord(
                id="requested", connection_id=connection.id, trigger="on_demand", started_at=self._clock()
            )
            card = progress_card(connection, asked, REQUESTED)
        activity_id = await turn.send_card(card)
        ref = card_ref(turn, activity_id) if activity_id else None
        if ref is not None and running is None:
            try:
                await self._book.add_pending(connection.id, ref)
            except ConnectorError as exc:
                log.warning("could not remember the card of a requested run: %s", type(exc).__name__)
        self._tasks.spawn(self._request(connection, requester, ref), name=f"now:{connection.id}")

    async def _within_own_share(self, requester: Requester, connection: Connection) -> bool:
        if requester.user_id and requester.user_id == connection.created_by_aad_id:
            return True
        day = self._clock().date().isoformat()
        name = f"on_demand_user:{connection.id}:{requester.tenant_id}:{requester.user_id}:{day}"
        try:
            used = await self._store.incr_counter(name, ttl_seconds=2 * 86400)
        except ConnectorError:
            return True  # the connection's own allowance still applies in the scheduler
        return used <= OTHERS_ON_DEMAND_PER_DAY

    async def _request(self, connection: Connection, requester: Requester, ref: CardRef | None) -> None:
        cid = connection.id
        try:
            answer = await self._sync.run_now(cid, requested_by=requester.user_id)
        except ConnectorError as exc:
            log.warning("could not request a run of %s: %s", cid, type(exc).__name__)
            if ref is not None and await self._take_back(cid, ref):
                self._show(ref, _message(MessageTone.ERROR, "The sync didn't start", _STORE_DOWN, connection))
            return
        if ref is None:
            return  # no card to keep up to date: the notifier posts the result (somebody asked for it)
        if answer.refused_reason:
            if await self._take_back(cid, ref):
                text = refusal_sentence(answer, connection)
                self._show(ref, _message(MessageTone.WARNING, "The sync didn't start", text, connection))
            return
        if not answer.run_id:
            if answer.queued:
                placeholder = RunRecord(
                    id="queued", connection_id=cid, trigger="on_demand", started_at=self._clock()
                )
                self._show_unless_taken(cid, ref, progress_card(connection, placeholder, QUEUED))
            return
        try:
            entry = await self._book.bind(cid, answer.run_id, ref)
        except ConnectorError as exc:
            log.warning("could not bind a card to run %s: %s", answer.run_id, type(exc).__name__)
            return
        if entry.finished:
            # So quick (or joined so late) that its end was reported before the card was bound.
            self._enqueue(ref, lambda: self._show_result(cid, answer.run_id, ref))
        elif answer.joined:
            self._enqueue(ref, lambda: self._show_joined(cid, answer.run_id, ref))

    # ---- card changes, queued behind the notifier's ----------------------------------------------

    def _enqueue(self, ref: CardRef, job: Callable[[], Awaitable[None]]) -> None:
        self._sender.enqueue(ref.conversation_key, job, label="sync-now card")

    def _show(self, ref: CardRef, card: dict[str, Any]) -> None:
        async def job() -> None:
            await self._sender.update_card(
                ref.conversation_key, ref.activity_id, card, thread_id=ref.thread_id
            )

        self._enqueue(ref, job)

    def _show_unless_taken(self, connection_id: str, ref: CardRef, card: dict[str, Any]) -> None:
        async def job() -> None:
            if await self._book.is_pending(connection_id, ref):
                await self._sender.update_card(
                    ref.conversation_key, ref.activity_id, card, thread_id=ref.thread_id
                )

        self._enqueue(ref, job)

    async def _show_joined(self, connection_id: str, run_id: str, ref: CardRef) -> None:
        state = await self._book.state(connection_id, run_id)
        if state is not None and state.finished:
            return  # the result is on the card already (or queued right behind)
        run = await self._store.get_run(run_id)
        connection = await self._store.get_connection(connection_id)
        if run is None or connection is None or run.outcome != RunOutcome.RUNNING:
            return
        card = progress_card(connection, run, JOINED)
        await self._sender.update_card(ref.conversation_key, ref.activity_id, card, thread_id=ref.thread_id)

    async def _show_result(self, connection_id: str, run_id: str, ref: CardRef) -> None:
        run = await self._store.get_run(run_id)
        connection = await self._store.get_connection(connection_id)
        if run is None or connection is None or run.outcome == RunOutcome.RUNNING:
            return
        await self._sender.update_card(
            ref.conversation_key, ref.activity_id, result_card(connection, run), thread_id=ref.thread_id
        )

    async def _take_back(self, connection_id: str, ref: CardRef) -> bool:
        """True if the card is still ours to change (no run took it over meanwhile)."""
        try:
            return await self._book.drop_pending(connection_id, ref)
        except ConnectorError:
            return True


_STORE_DOWN = "The connector's storage didn't answer. Please try again in a moment."


def _message(tone: MessageTone, title: str, text: str, connection: Connection) -> dict[str, Any]:
    return render_message_card(
        MessageCardData(
            title=f"{title}: {connection.name}", text=text, tone=tone, retry_command=f"now {connection.name}"
        )
    )
