"""Proactive delivery to a conversation, within Teams' rate limits, in order, with retries.

Teams allows a bot, per conversation, 7 messages a second, 8 in 2 s, 60 in 30 s and 1,800 an hour; beyond
that it answers 429, and 412/502/504 now and then. Every send to one conversation goes through one FIFO
lane: a lock taken before anything else is awaited (so sends leave in the order they were asked for) and
a sliding-window limiter that keeps us under every window (so we stay under the limits instead of bouncing
off them; a leaky bucket would let almost twice a window's allowance through at the start). What still
fails transiently is retried with exponential backoff and jitter, or after the `Retry-After` Teams gives.

A 403 means the bot was removed from the conversation (or it was deleted): the conversation is marked in
the store and skipped from then on (`ConversationGone`), and the caller (the sync) carries on.

`enqueue` hands a delivery to a per-conversation background worker, for callers that must not wait on
Teams (the sync's notifier): jobs of one conversation run one after the other in order, a job may replace
a queued one with the same `coalesce` key (only the latest state of a progress card matters), and a job
that fails is logged, never raised. A conversation's queue is bounded (`max_queued`, issue 14): at Teams'
pace of about two messages a second, a deeper queue would deliver stale news many minutes late and hold memory
for anyone who can make the bot talk; beyond it the oldest queued job is dropped (and logged), since the
newer ones carry the newer state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from botbuilder.core import TurnContext
from botbuilder.schema import ConversationReference
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot import metrics
from bot.storage.base import ConversationStore
from bot.sync.http import parse_retry_after
from bot.sync.ratelimit import RateWindow as RateWindow  # re-exported: bot.teams.app configures the sender
from bot.sync.ratelimit import SlidingWindows as SlidingWindows
from bot.teams.turn import card_activity

log = logging.getLogger(__name__)

RETRIABLE = frozenset({429, 412, 502, 503, 504})
MAX_QUEUED_PER_CONVERSATION = 500

Job = Callable[[], Awaitable[None]]
Sleep = Callable[[float], Awaitable[None]]
Logic = Callable[[TurnContext], Awaitable[None]]


# Teams' per-conversation limits for sending (TP:bots/how-to/rate-limit), one short of each, since other
# processes of the bot may share the conversation now and then.
TEAMS_WINDOWS: tuple[RateWindow, ...] = (
    RateWindow(6, 1.0),
    RateWindow(7, 2.0),
    RateWindow(58, 30.0),
    RateWindow(1780, 3600.0),
)


class ConversationGone(Exception):
    """The bot can no longer post in this conversation (403: removed, or the conversation was deleted)."""


class ContinuationAdapter(Protocol):
    """What we need of botbuilder's CloudAdapter."""

    async def continue_conversation(
        self, reference: ConversationReference, callback: Logic, bot_app_id: str
    ) -> Any: ...


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of a Bot Connector error (msrest's ErrorResponseException carries the response)."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return status if isinstance(status, int) else None


def retry_after(exc: BaseException, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date), if the error has one."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    try:
        raw = headers.get("Retry-After")
    except AttributeError:
        return None
    # One parser for every Retry-After we read (the provider clients use it too).
    return parse_retry_after(raw, now=now) if isinstance(raw, str) else None


def _retriable(exc: BaseException) -> bool:
    return http_status(exc) in RETRIABLE or isinstance(exc, ConnectionError | TimeoutError)


@dataclass
class _Queued:
    job: Job
    label: str
    coalesce: str | None


@dataclass
class _Lane:
    limiter: SlidingWindows
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queue: deque[_Queued] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None


class ProactiveSender:
    def __init__(
        self,
        adapter: ContinuationAdapter,
        conversations: ConversationStore,
        bot_app_id: str,
        *,
        windows: Sequence[RateWindow] = TEAMS_WINDOWS,
        attempts: int = 8,
        base_wait: float = 0.5,
        max_wait: float = 60.0,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        max_queued: int = MAX_QUEUED_PER_CONVERSATION,
    ) -> None:
        self._adapter = adapter
        self._max_queued = max(1, max_queued)
        self.dropped = 0  # queued jobs dropped because a conversation's queue was full
        self._conversations = conversations
        self._bot_app_id = bot_app_id
        self._windows = tuple(windows)
        self._attempts = attempts
        self._base_wait = base_wait
        self._max_wait = max_wait
        self._sleep = sleep
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._rng = rng or random.Random()  # jitter, not security
        self._lanes: dict[str, _Lane] = {}
        self.retries = 0  # transient failures retried (for tests and metrics)

    # ---- direct sends: awaited, raise on failure ------------------------------------------------

    async def send_card(self, conversation_key: str, card: dict[str, Any], *, thread_id: str = "") -> str:
        """Post a card; returns its activity id. Raises ConversationGone if the bot was removed."""
        result: list[str] = []

        async def logic(context: TurnContext) -> None:
            response = await context.send_activity(card_activity(card))
            result.append(str(getattr(response, "id", "") or ""))

        await self._deliver(conversation_key, logic, thread_id=thread_id)
        return result[0] if result else ""

    async def update_card(
        self, conversation_key: str, activity_id: str, card: dict[str, Any], *, thread_id: str = ""
    ) -> None:
        async def logic(context: TurnContext) -> None:
            await context.update_activity(card_activity(card, activity_id))

        await self._deliver(conversation_key, logic, thread_id=thread_id)

    async def send_text(self, conversation_key: str, text: str, *, thread_id: str = "") -> str:
        result: list[str] = []

        async def logic(context: TurnContext) -> None:
            response = await context.send_activity(text)
            result.append(str(getattr(response, "id", "") or ""))

        await self._deliver(conversation_key, logic, thread_id=thread_id)
        return result[0] if result else ""

    # ---- background delivery: ordered per conversation, never raises ------------------------------

    def enqueue(
        self, conversation_key: str, job: Job, *, label: str = "delivery", coalesce: str | None = None
    ) -> None:
        """Run `job` after the jobs already queued for this conversation. With `coalesce`, a queued job
        with the same key that has not started yet is replaced (in its place) instead of adding one."""
        lane = self._lane(conversation_key)
        if coalesce is not None:
            for index, queued in enumerate(lane.queue):
                if queued.coalesce == coalesce:
                    lane.queue[index] = _Queued(job, label, coalesce)
                    return
        if len(lane.queue) >= self._max_queued:
            dropped = lane.queue.popleft()
            self.dropped += 1
            metrics.queued(-1)
            log.warning("a conversation's delivery queue is full: dropped its oldest %s", dropped.label)
        lane.queue.append(_Queued(job, label, coalesce))
        metrics.queued(1)
        if lane.worker is None or lane.worker.done():
            lane.worker = asyncio.create_task(
                self._work(conversation_key, lane), name=f"deliver:{conversation_key}"
            )

    def pending(self) -> int:
        """Jobs queued or running, over all conversations."""
        return sum(
            len(lane.queue) + (1 if lane.worker and not lane.worker.done() else 0)
            for lane in self._lanes.values()
        )

    async def drain(self, within: float | None = None) -> bool:
        """Wait until every queued job has run; False if `within` seconds passed first."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            workers = [lane.worker for lane in self._lanes.values() if lane.worker and not lane.worker.done()]
            if not workers:
                return True
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return False
            await asyncio.wait(workers, timeout=left)

    async def close(self, grace: float = 10.0) -> None:
        """Deliver what is queued (up to `grace` seconds), then cancel the rest."""
        if not await self.drain(grace):
            dropped = sum(len(lane.queue) for lane in self._lanes.values())
            log.warning("shutting down with %d notification(s) undelivered", dropped)
        for lane in self._lanes.values():
            metrics.queued(-len(lane.queue))
            lane.queue.clear()
            if lane.worker is not None and not lane.worker.done():
                lane.worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await lane.worker

    async def _work(self, key: str, lane: _Lane) -> None:
        while lane.queue:
            item = lane.queue.popleft()
            metrics.queued(-1)
            try:
                await item.job()
            except ConversationGone:
                log.info("skipped a %s: the bot is no longer in the conversation", item.label)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed notification must never reach the caller (the sync)
                log.warning("could not deliver a %s (%s)", item.label, describe_error(exc))

    # ---- the lane ---------------------------------------------------------------------------------

    def _lane(self, key: str) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            if len(self._lanes) >= 1000:
                self._forget_idle_lanes()
            lane = self._lanes[key] = _Lane(SlidingWindows(self._windows, self._clock))
        return lane

    def _forget_idle_lanes(self) -> None:
        """Lanes of conversations quiet for longer than the longest window hold nothing worth keeping."""
        horizon = max((w.seconds for w in self._windows), default=0.0)
        now = self._clock()
        for key, lane in list(self._lanes.items()):
            busy = lane.lock.locked() or lane.queue or (lane.worker is not None and not lane.worker.done())
            last = lane.limiter.last
            if not busy and (last is None or now - last > horizon):
                del self._lanes[key]

    async def _deliver(self, key: str, logic: Logic, *, thread_id: str) -> None:
        lane = self._lane(key)
        # The lock comes first: callers queue on it in the order they called, whatever awaits follow.
        async with lane.lock:
            reference = await self._reference(key, thread_id)
            retrying = AsyncRetrying(
                retry=retry_if_exception(_retriable),
                stop=stop_after_attempt(self._attempts),
                wait=self._wait,
                sleep=self._sleep,
                before_sleep=self._before_retry,
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    await self._pace(lane)
                    await self._send_once(key, reference, logic)

    async def _reference(self, key: str, thread_id: str) -> ConversationReference:
        stored = await self._conversations.get_reference(key)
        if stored is None:
            raise ConversationGone(f"no conversation reference for {key}")
        if stored.removed:
            raise ConversationGone(f"the bot was removed from {key}")
        reference = ConversationReference().deserialize(stored.reference)
        if reference.conversation is not None and stored.conversation_type == "channel":
            # The stored reference points into whichever thread spoke last. Into the thread asked for
            # (the connection's own, or the one a command was typed in), else a new post in the channel.
            base_id = str(reference.conversation.id).split(";", 1)[0]
            reference.conversation.id = f"{base_id};messageid={thread_id}" if thread_id else base_id
        return reference

    async def _pace(self, lane: _Lane) -> None:
        while (wait := lane.limiter.delay()) > 0:
            await self._sleep(wait)
        lane.limiter.record()

    async def _send_once(self, key: str, reference: ConversationReference, logic: Logic) -> None:
        failures: list[Exception] = []

        async def guarded(context: TurnContext) -> None:
            # botbuilder hands an error raised in here to the adapter's on_turn_error, which logs it as
            # an ERROR and swallows it: catch it first, so we see the status and decide (retry, 403).
            try:
                await logic(context)
            except Exception as exc:
                failures.append(exc)

        try:
            await self._adapter.continue_conversation(reference, guarded, self._bot_app_id)
            if failures:
                raise failures[0]
        except Exception as exc:
            if http_status(exc) == 403:
                await self._conversations.mark_removed(key)
                log.warning("the bot was removed from a conversation (403); it is skipped from now on")
                raise ConversationGone(f"403 from {key}") from exc
            raise

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        told = retry_after(exc) if exc is not None else None
        if told is not None:
            # Teams said how long; a little jitter so parallel senders do not return in step.
            return min(self._max_wait, told + self._rng.uniform(0, 0.1 * max(told, 0.1)))
        ceiling = min(self._max_wait, self._base_wait * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(ceiling / 2, ceiling)

    def _before_retry(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome is not None else None
        # Expected under load: INFO, never ERROR (a 429 is Teams asking us to slow down, not a fault).
        log.info(
            "Teams answered %s; retry %d after %.2f s",
            http_status(exc) if exc is not None else "?",
            state.attempt_number,
            state.next_action.sleep if state.next_action is not None else 0.0,
        )


def describe_error(exc: BaseException) -> str:
    """A Bot Connector failure in a few words (its status), for the log."""
    status = http_status(exc)
    return f"HTTP {status}" if status is not None else type(exc).__name__
