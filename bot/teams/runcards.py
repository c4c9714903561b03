"""Which cards show which run, kept in the store so a restarted bot still updates the right card.

One JSON document per connection (`DocumentStore`, eTag-checked, so several bot processes agree):

- `pending`: cards posted by `now` before the run existed; the run that starts next takes them over.
- `runs`: per run id, the cards that show it and whether its start and its end were already reported
  (the claim that stops the in-process notifier and the run watcher from reporting one run twice).
- `alerts`: when each kind of alert was last posted (a second one within the quiet period is dropped).
- `xero_timezone`: the Xero organisation's zone as of the last reported run (the watcher's change check).

Only activity ids, conversation keys and times: nothing of a run's content, no financial data.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConcurrencyError, StoreError
from bot.storage.base import DocumentStore, LockStore, utcnow
from bot.teams.turn import Turn

T = TypeVar("T")

PREFIX = "ops:cards:"
KEEP_RUNS = 30
PENDING_FOR = timedelta(minutes=10)  # a `now` card older than this is not taken over by a run


class CardRef(BaseModel):
    """A card we posted: where, and its activity id."""

    model_config = ConfigDict(frozen=True)

    conversation_key: str
    activity_id: str
    thread_id: str = ""


def thread_of(turn: Turn) -> str:
    """In a channel, the thread the activity came from (its root message id); "" elsewhere."""
    if not turn.is_channel:
        return ""
    _, _, thread = str(turn.activity.conversation.id or "").partition(";messageid=")
    return thread


def card_ref(turn: Turn, activity_id: str) -> CardRef:
    """A card this turn just sent (replies land in the turn's thread)."""
    return CardRef(conversation_key=turn.conversation_key, activity_id=activity_id, thread_id=thread_of(turn))


class RunCards(BaseModel):
    cards: list[CardRef] = Field(default_factory=list)
    started: bool = False
    finished: bool = False


class _Book(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pending: list[CardRef] = Field(default_factory=list)
    pending_at: datetime | None = None
    runs: dict[str, RunCards] = Field(default_factory=dict)
    alerts: dict[str, datetime] = Field(default_factory=dict)
    xero_timezone: str = ""

    def run(self, run_id: str) -> RunCards:
        entry = self.runs.get(run_id)
        if entry is None:
            entry = self.runs[run_id] = RunCards()
            while len(self.runs) > KEEP_RUNS:
                del self.runs[next(iter(self.runs))]
        return entry


@dataclass(frozen=True)
class Claim:
    """The answer to "may I report this?": `claimed` is True for exactly one caller per run and phase."""

    claimed: bool
    cards: tuple[CardRef, ...] = ()
    previous_xero_timezone: str = ""


class BookStore(DocumentStore, LockStore, Protocol):
    """What the book needs of the store."""


class RunCardBook:
    def __init__(
        self, store: BookStore, *, clock: Callable[[], datetime] = utcnow, attempts: int = 8
    ) -> None:
        self._store = store
        self._clock = clock
        self._attempts = attempts
        self._owner = f"runcards:{uuid.uuid4().hex[:12]}"

    # ---- `now` cards ------------------------------------------------------------------------------

    async def add_pending(self, connection_id: str, card: CardRef) -> None:
        def apply(book: _Book) -> None:
            now = self._clock()
            if book.pending_at is None or now - book.pending_at > PENDING_FOR:
                book.pending = []
            book.pending.append(card)
            book.pending_at = now

        await self._update(connection_id, apply)

    async def drop_pending(self, connection_id: str, card: CardRef) -> bool:
        """Take a card back (the run was refused). False if a run already took it over."""

        def apply(book: _Book) -> bool:
            if card in book.pending:
                book.pending.remove(card)
                return True
            return False

        return await self._update(connection_id, apply)

    async def is_pending(self, connection_id: str, card: CardRef) -> bool:
        book, _ = await self._read(connection_id)
        return card in book.pending

    async def bind(self, connection_id: str, run_id: str, card: CardRef) -> RunCards:
        """Show `run_id` on this card from now on (taking it out of the pending ones). The returned
        entry says whether the run's end was already reported (then the card is the caller's to finish)."""

        def apply(book: _Book) -> RunCards:
            if card in book.pending:
                book.pending.remove(card)
            entry = book.run(run_id)
            if card not in entry.cards:
                entry.cards.append(card)
            return entry.model_copy(deep=True)

        return await self._update(connection_id, apply)

    # ---- a run's start and end ---------------------------------------------------------------------

    async def claim_start(self, connection_id: str, run_id: str) -> Claim:
        """Claim reporting the start; the claimer gets the pending `now` cards, which now show this run."""

        def apply(book: _Book) -> Claim:
            entry = book.run(run_id)
            if entry.started or entry.finished:
                return Claim(False, tuple(entry.cards))
            entry.started = True
            fresh = book.pending_at is not None and self._clock() - book.pending_at <= PENDING_FOR
            for card in book.pending if fresh else []:
                if card not in entry.cards:
                    entry.cards.append(card)
            book.pending = []
            book.pending_at = None
            return Claim(True, tuple(entry.cards))

        return await self._update(connection_id, apply)

    async def claim_finish(self, connection_id: str, run_id: str, xero_timezone: str = "") -> Claim:
        """Claim reporting the end. Pending `now` cards are taken over too (a run too quick to be seen
        starting). Records the Xero zone and returns the one recorded before."""

        def apply(book: _Book) -> Claim:
            entry = book.run(run_id)
            previous = book.xero_timezone
            if xero_timezone:
                book.xero_timezone = xero_timezone
            if entry.finished:
                return Claim(False, tuple(entry.cards), previous)
            if not entry.started:
                fresh = book.pending_at is not None and self._clock() - book.pending_at <= PENDING_FOR
                entry.cards.extend(c for c in (book.pending if fresh else []) if c not in entry.cards)
                book.pending = []
                book.pending_at = None
            entry.started = entry.finished = True
            return Claim(True, tuple(entry.cards), previous)

        return await self._update(connection_id, apply)

    async def add_card(self, connection_id: str, run_id: str, card: CardRef) -> None:
        """A card posted for a run by the notifier itself (progress or result)."""

        def apply(book: _Book) -> None:
            entry = book.run(run_id)
            if card not in entry.cards:
                entry.cards.append(card)

        await self._update(connection_id, apply)

    async def cards(self, connection_id: str, run_id: str) -> tuple[CardRef, ...]:
        book, _ = await self._read(connection_id)
        entry = book.runs.get(run_id)
        return tuple(entry.cards) if entry else ()

    async def state(self, connection_id: str, run_id: str) -> RunCards | None:
        book, _ = await self._read(connection_id)
        return book.runs.get(run_id)

    # ---- alerts ------------------------------------------------------------------------------------

    async def claim_alert(self, connection_id: str, reason: str, quiet: timedelta) -> bool:
        """True if no alert of this kind was posted for the connection within `quiet` (and records it)."""

        def apply(book: _Book) -> bool:
            now = self._clock()
            last = book.alerts.get(reason)
            if last is not None and now - last < quiet:
                return False
            book.alerts[reason] = now
            return True

        return await self._update(connection_id, apply)

    async def forget(self, connection_id: str) -> None:
        await self._store.delete_documents([PREFIX + connection_id])

    # ---- the document ------------------------------------------------------------------------------

    async def _read(self, connection_id: str) -> tuple[_Book, str | None]:
        found = await self._store.read_documents([PREFIX + connection_id])
        doc = found.get(PREFIX + connection_id)
        if doc is None:
            return _Book(), None
        try:
            return _Book.model_validate(doc.value), doc.etag
        except ValidationError:
            # Unreadable (an older shape): start again rather than stop notifying.
            return _Book(), doc.etag

    async def _update(self, connection_id: str, apply: Callable[[_Book], T]) -> T:
        key = PREFIX + connection_id
        for attempt in range(self._attempts):
            book, etag = await self._read(connection_id)
            before = book.model_dump(mode="json")
            result = apply(book)
            data = book.model_dump(mode="json")
            if data == before and etag is not None:
                return result  # nothing changed: no write (the watcher asks often)
            try:
                if etag is not None:
                    await self._store.write_document(key, data, etag)
                    return result
                if await self._create(key, data):
                    return result
            except ConcurrencyError:
                pass
            await asyncio.sleep(0.005 * (attempt + 1))
        raise StoreError(f"the card book of connection {connection_id} kept changing")

    async def _create(self, key: str, data: dict[str, object]) -> bool:
        """The store cannot create-if-absent: a short lock makes the first write of a document exclusive."""
        lock = f"{key}:create"
        if not await self._store.acquire_lock(lock, self._owner, ttl_seconds=5.0):
            return False
        try:
            if (await self._store.read_documents([key])).get(key) is not None:
                return False
            await self._store.write_document(key, data, None)
            return True
        finally:
            await self._store.release_lock(lock, self._owner)
