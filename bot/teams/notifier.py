"""`TeamsNotifier`: the sync's `Notifier` port, posting to the conversation where the connection was set up.

- A run shows as one card, updated in place: a progress card while it runs, then the result (outcome,
  counts per table, duration, next run, up to 10 failed records with reasons). Which cards show which
  run is kept in the store (`RunCardBook`), so the card is found again after a restart and by another
  bot process; the `now` command's own card is taken over by the run it asked for.
- Which runs get a card follows the connection's `notify_mode`: every run, runs with changes or
  failures, or failures only. A run somebody asked for (`now`, the first run after setup) always does.
- Alerts (reconnect Xero / Dynamics 365, repeated failures, timezone change, Xero's daily allowance) go
  out as cards with the button that fixes the cause; the same alert is not repeated within `alert_quiet`.
- In a channel everything goes into the connection's own thread (`Connection.thread_activity_id`).

The sync awaits these methods, so they only claim (one store write) and queue the delivery with
`ProactiveSender.enqueue`: Teams' rate limits and retries never slow a run, and nothing here raises.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from bot.errors import ConnectorError
from bot.storage.base import (
    Connection,
    ConnectionStatus,
    ConnectionStore,
    NotifyMode,
    RunOutcome,
    RunRecord,
    RunStage,
)
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.teams.attention_words import attention_words
from bot.teams.proactive import ConversationGone, ProactiveSender, describe_error
from bot.teams.runcards import CardRef, Claim, RunCardBook
from cards import (
    AlertCardData,
    ProgressCardData,
    RunResultCardData,
    render_alert_card,
    render_progress_card,
    render_run_result_card,
)

log = logging.getLogger(__name__)

ASKED_FOR = frozenset({"on_demand", "setup"})  # triggers of runs somebody is waiting for

STAGE_WORDS: dict[str, str] = {
    "starting": "Starting: reading Xero",
    RunStage.READ_XERO: "Read Xero; writing to Dynamics 365",
    RunStage.WROTE_ACCOUNTS: "Chart of Accounts written; tax rates next",
    RunStage.WROTE_TAX_RATES: "Tax rates written; branding themes next",
    RunStage.WROTE_BRANDING_THEMES: "Branding themes written; tracking categories next",
    RunStage.WROTE_TRACKING: "Tracking categories written; finishing",
}


def progress_card(connection: Connection, run: RunRecord, stage: str = "starting") -> dict[str, Any]:
    words = STAGE_WORDS.get(stage, stage.replace("_", " "))
    return render_progress_card(ProgressCardData.from_run(connection, run, words))


def result_card(connection: Connection, run: RunRecord) -> dict[str, Any]:
    return render_run_result_card(RunResultCardData.from_run(connection, run))


def shows_progress(connection: Connection, run: RunRecord) -> bool:
    """A progress card while it runs: for runs somebody asked for, and for 'every run' connections."""
    return run.trigger in ASKED_FOR or connection.notify_mode == NotifyMode.EVERY_RUN


def should_report(connection: Connection, run: RunRecord) -> bool:
    """A result card for a run that has none yet, per the connection's notify mode."""
    if run.trigger in ASKED_FOR or connection.notify_mode == NotifyMode.EVERY_RUN:
        return True
    failed = run.outcome in (RunOutcome.FAILED, RunOutcome.PARTIAL) or any(
        c.failed for c in run.counts.values()
    )
    if connection.notify_mode == NotifyMode.FAILURES_ONLY:
        return failed
    return failed or any(c.changed for c in run.counts.values())


class TeamsNotifier:
    def __init__(
        self,
        sender: ProactiveSender,
        book: RunCardBook,
        *,
        connections: ConnectionStore | None = None,
        alert_quiet: timedelta = timedelta(minutes=10),
    ) -> None:
        self._sender = sender
        self._book = book
        self._connections = connections
        self._alert_quiet = alert_quiet

    @property
    def book(self) -> RunCardBook:
        return self._book

    @property
    def sender(self) -> ProactiveSender:
        return self._sender

    # ---- the Notifier port -----------------------------------------------------------------------

    async def run_started(self, connection: Connection, run: RunRecord) -> None:
        try:
            claim = await self._book.claim_start(connection.id, run.id)
        except ConnectorError as exc:
            log.warning("could not record the start of run %s: %s", run.id, type(exc).__name__)
            return
        if not claim.claimed or not (claim.cards or shows_progress(connection, run)):
            return
        try:
            card = progress_card(connection, run)
        except Exception:
            log.warning("could not render the progress card of run %s", run.id, exc_info=True)
            return
        self._show(connection, run, card, post=True, label="progress card")

    async def run_progress(self, connection: Connection, run: RunRecord, stage: str) -> None:
        try:
            card = progress_card(connection, run, stage)
        except Exception:  # a card that does not render must not stop the others
            log.warning("could not render the progress card of run %s", run.id, exc_info=True)
            return
        # Only cards that exist are updated; a newer stage replaces an update still waiting its turn.
        self._show(connection, run, card, post=False, label="progress update", coalesce=f"progress:{run.id}")

    async def run_finished(self, connection: Connection, run: RunRecord) -> None:
        await self.report_finished(connection, run)

    async def needs_attention(
        self, connection: Connection, reason: AttentionReason, detail: AttentionDetail
    ) -> None:
        try:
            if self._connections is not None:
                # A run that ended after a disconnect finds no tokens: that is no reason to ask anyone.
                current = await self._connections.get_connection(connection.id)
                if current is None or current.status == ConnectionStatus.DISCONNECTED:
                    return
            if not await self._book.claim_alert(connection.id, reason.value, self._alert_quiet):
                log.info("alert %s for connection %s was already posted", reason.value, connection.id)
                return
            card = render_alert_card(
                AlertCardData(
                    connection_id=connection.id,
                    connection_name=connection.name,
                    reason=reason,
                    detail=attention_words(reason, detail),
                )
            )
        except Exception:
            log.warning("could not prepare the %s alert", reason.value, exc_info=True)
            return
        key, thread = connection.conversation_key, connection.thread_activity_id

        async def post() -> None:
            await self._sender.send_card(key, card, thread_id=thread)

        self._sender.enqueue(key, post, label=f"{reason.value} alert")

    # ---- for the run watcher and the `now` command ------------------------------------------------

    async def report_finished(self, connection: Connection, run: RunRecord) -> Claim:
        """Claim the run's end and queue its result card; the claim says whether this call got it."""
        try:
            claim = await self._book.claim_finish(connection.id, run.id, connection.xero_timezone)
        except ConnectorError as exc:
            log.warning("could not record the end of run %s: %s", run.id, type(exc).__name__)
            return Claim(False)
        if not claim.claimed:
            return claim
        try:
            card = result_card(connection, run)
        except Exception:
            log.warning("could not render the result card of run %s", run.id, exc_info=True)
            return claim
        post = should_report(connection, run)
        if claim.cards or post:
            # Replaces a progress update still waiting: the result is the latest state.
            self._show(connection, run, card, post=post, label="result card", coalesce=f"progress:{run.id}")
        return claim

    # ---- delivery --------------------------------------------------------------------------------

    def _show(
        self,
        connection: Connection,
        run: RunRecord,
        card: dict[str, Any],
        *,
        post: bool,
        label: str,
        coalesce: str | None = None,
    ) -> None:
        """Queue: update every card showing the run; with none and `post`, post one (and remember it)."""
        key, thread = connection.conversation_key, connection.thread_activity_id
        book, sender, cid, rid = self._book, self._sender, connection.id, run.id

        async def deliver() -> None:
            # Read at delivery time: a `now` card may have been bound since the claim.
            cards = await book.cards(cid, rid)
            if cards:
                await _update_all(sender, cards, card)
                return
            if post:
                activity_id = await sender.send_card(key, card, thread_id=thread)
                if activity_id:
                    await book.add_card(
                        cid, rid, CardRef(conversation_key=key, activity_id=activity_id, thread_id=thread)
                    )

        self._sender.enqueue(key, deliver, label=label, coalesce=coalesce)


async def _update_all(sender: ProactiveSender, cards: tuple[CardRef, ...], card: dict[str, Any]) -> None:
    for ref in cards:
        try:
            await sender.update_card(ref.conversation_key, ref.activity_id, card, thread_id=ref.thread_id)
        except ConversationGone:
            raise
        except Exception as exc:
            # One card that cannot be updated (deleted by someone) must not keep the others stale.
            log.warning("could not update a card (%s)", describe_error(exc))
