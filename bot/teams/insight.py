"""`sync preview` and `sync why`: explaining a connection without changing anything.

    preview [name]        reads Xero now (limited per connection) and shows what the next run would create,
                          update and deactivate; writes nothing to Dynamics 365 or to the fingerprints
    why <code or name>    where one account, tax rate, branding theme or tracking option stands, and why

Both answer at once with a card that the background work then replaces (reading Xero and Dynamics takes
seconds). `why` searches every connection of the conversation; several matches get a short choice
card whose buttons run `why id:<connection>:<entity>:<key>`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bot.errors import ConnectorError
from bot.storage.base import Connection, ConnectionStatus, Store
from bot.sync.mapping import Entity
from bot.sync.ports import DataverseFactory
from bot.sync.preview import Preview, Previewer, PreviewLimited
from bot.sync.why import Candidate, Explanation, WhyFinder
from bot.sync.xero import XeroClient
from bot.teams.background import BackgroundTasks
from bot.teams.proactive import ProactiveSender
from bot.teams.runcards import card_ref
from bot.teams.turn import Turn
from cards import MessageCardData, MessageTone, render_message_card
from cards.failure_words import record_refusal_words, refusal_of
from cards.formatting import format_both
from cards.insight import (
    SINGULAR,
    EntityPreviewData,
    PreviewCardData,
    WhyCardData,
    WhyChoice,
    render_preview_card,
    render_why_card,
)
from cards.problem_words import error_words

log = logging.getLogger(__name__)

ID_PREFIX = "id:"
ADVICE = (
    "Fix the record in Xero (or ask a Dynamics 365 admin if the column is too small), then say **now**: "
    "every run tries a failed record again."
)


def _message(tone: MessageTone, title: str, text: str, retry: str = "") -> dict[str, Any]:
    return render_message_card(MessageCardData(title=title, text=text, tone=tone, retry_command=retry))


def preview_card(connection: Connection, preview: Preview) -> dict[str, Any]:
    return render_preview_card(
        PreviewCardData(
            connection_id=connection.id,
            connection_name=connection.name,
            read_at=preview.read_at,
            timezone=connection.timezone,
            full=preview.full,
            xero_calls=preview.xero_calls,
            entities=tuple(
                EntityPreviewData(
                    entity=e.entity,
                    created=e.created,
                    updated=e.updated,
                    deactivated=e.deactivated,
                    unchanged=e.unchanged,
                    examples=e.examples,
                )
                for e in preview.entities
            ),
            skipped=preview.skipped,
        )
    )


def explanation_sentences(
    connection: Connection, why: Explanation
) -> tuple[list[tuple[str, str]], list[str]]:
    """(facts, sentences) for the card: typed facts in, words out."""
    zone = connection.timezone
    facts: list[tuple[str, str]] = []
    if why.in_dynamics:
        where = "Removed from Xero: marked inactive (never deleted)" if why.removed_from_xero else "Present"
        facts.append(("In Dynamics 365", where))
        if why.xero_status:
            facts.append(("Status in Xero", why.xero_status))
    else:
        facts.append(("In Dynamics 365", "Not there yet"))
    if why.last_written is not None:
        facts.append(
            ("Last written", f"{format_both(why.last_written.at, zone)} ({why.last_written.detail})")
        )
        run = why.written_by
        if run is not None:
            facts.append(
                ("By the run", f"{run.trigger.replace('_', ' ')} run of {format_both(run.started_at, zone)}")
            )
    sentences: list[str] = []
    if why.switched_off:
        sentences.append(
            "Its kind of record is switched off in the settings: runs neither read nor write it, so the row in "
            "Dynamics 365 stays as it is."
        )
    if why.failure is not None:
        sentences.append("The last run that tried to write it could not: see below.")
    elif why.unchanged_since:
        sentences.append(
            "Runs since then found it unchanged in Xero and left it alone (skipped as unchanged): "
            "Dynamics 365 has what Xero has."
        )
    elif why.fingerprint:
        sentences.append(
            "The next run compares it with what was last written and writes it only if it changed."
        )
    elif why.in_dynamics:
        sentences.append(
            "No run of this connection has written it yet (it came from an earlier connection or by hand)."
        )
    else:
        sentences.append("The next run creates it.")
    return facts, sentences


class Insight:
    def __init__(
        self,
        store: Store,
        sender: ProactiveSender,
        tasks: BackgroundTasks,
        *,
        xero: XeroClient | None,
        dataverse_factory: DataverseFactory | None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._tasks = tasks
        self._previewer = Previewer(store, xero, dataverse_factory) if xero is not None else None
        self._finder = WhyFinder(store, xero, dataverse_factory)

    # ---- preview ---------------------------------------------------------------------------------

    async def preview(self, turn: Turn, connection: Connection) -> None:
        if self._previewer is None:
            await turn.send_text("Previews are not available in this deployment.")
            return
        if connection.status in (ConnectionStatus.DISCONNECTED, ConnectionStatus.NEEDS_RECONNECTION):
            state = connection.status.value.replace("_", " ")
            await turn.send_card(
                _message(
                    MessageTone.WARNING,
                    f"{connection.name} is {state}",
                    "A preview reads Xero with its sign-in; reconnect first.",
                )
            )
            return
        ack = await turn.send_card(
            _message(MessageTone.INFO, f"Reading Xero for {connection.name}…", "Nothing will be written.")
        )
        previewer = self._previewer

        async def work() -> dict[str, Any]:
            try:
                return preview_card(connection, await previewer.preview(connection))
            except PreviewLimited as limited:
                minutes = max(1, int(limited.retry_after.total_seconds() // 60))
                return _message(
                    MessageTone.WARNING,
                    "Too many previews",
                    f"Previews read Xero and count against its limits. Try again in about {minutes} minutes.",
                )

        self._later(turn, ack, work, retry=f"preview {connection.name}")

    # ---- why -------------------------------------------------------------------------------------

    async def why(self, turn: Turn, here: list[Connection], args: list[str]) -> None:
        query = " ".join(args).strip()
        if not query:
            await turn.send_text("Tell me which record: **why 200**, **why OUTPUT2** or **why <name>**.")
            return
        ack = await turn.send_card(_message(MessageTone.INFO, f"Looking for “{query[:80]}”…", ""))

        async def work() -> dict[str, Any]:
            chosen = self._by_id(here, query)
            if chosen is not None:
                connection, entity, key = chosen
                candidate = await self._finder.by_key(connection, entity, key)
                return await self._explained(connection, candidate)
            found: list[Candidate] = []
            for connection in here:
                found += await self._finder.find(connection, query)
            if not found:
                return render_why_card(WhyCardData(query=query, not_found=True))
            if len(found) == 1:
                connection = next(c for c in here if c.id == found[0].connection_id)
                return await self._explained(connection, found[0])
            names = {c.id: c.name for c in here}
            choices = tuple(
                WhyChoice(
                    title=f"{SINGULAR.get(c.entity.value, 'Record')} {c.label}"
                    + (f" ({names[c.connection_id]})" if len(here) > 1 else ""),
                    command_text=f"why {ID_PREFIX}{c.connection_id}:{c.entity.value}:{c.key}",
                )
                for c in found
            )
            return render_why_card(
                WhyCardData(query=query, choices=choices[:6], more_choices=max(0, len(choices) - 6))
            )

        self._later(turn, ack, work, retry=f"why {query}"[:200])

    @staticmethod
    def _by_id(here: list[Connection], query: str) -> tuple[Connection, Entity, str] | None:
        """`id:<connection>:<entity>:<key>` from a choice card, for a connection of this conversation."""
        if not query.startswith(ID_PREFIX):
            return None
        parts = query[len(ID_PREFIX) :].split(":", 2)
        if len(parts) != 3 or parts[1] not in {e.value for e in Entity}:
            return None
        connection = next((c for c in here if c.id == parts[0]), None)
        return (connection, Entity(parts[1]), parts[2]) if connection is not None else None

    async def _explained(self, connection: Connection, candidate: Candidate) -> dict[str, Any]:
        why = await self._finder.explain(connection, candidate)
        facts, sentences = explanation_sentences(connection, why)
        return render_why_card(
            WhyCardData(
                query=candidate.label,
                connection_id=connection.id,
                connection_name=connection.name,
                entity=candidate.entity.value,
                label=candidate.label,
                facts=tuple(facts),
                sentences=tuple(sentences),
                failure=record_refusal_words(refusal_of(why.failure.refusal), why.failure.detail) if why.failure else "",
                advice=ADVICE if why.failure else "",
            )
        )

    # ---- plumbing --------------------------------------------------------------------------------

    def _later(
        self, turn: Turn, ack_id: str, work: Callable[[], Awaitable[dict[str, Any]]], *, retry: str
    ) -> None:
        """Run `work` in the background; its card replaces the acknowledgement."""
        ref = card_ref(turn, ack_id)

        async def run() -> None:
            try:
                card = await work()
            except ConnectorError as exc:
                log.warning("preview/why failed: %s", type(exc).__name__)
                card = _message(MessageTone.ERROR, "That didn't work", f"{error_words(exc)}. Nothing was changed.", retry)
            if ref.activity_id:
                await self._sender.update_card(
                    ref.conversation_key, ref.activity_id, card, thread_id=ref.thread_id
                )
            else:
                await self._sender.send_card(ref.conversation_key, card, thread_id=ref.thread_id)

        self._tasks.spawn(run(), name="insight")
