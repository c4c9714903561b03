"""Proactive delivery to a conversation, within Teams' rate limits, in order, with retries.

Teams allows a bot, per conversation, 7 messages a second, 8 in 2 s, 60 in 30 s and 1,800 an hour; it answers
429 beyond that, and 412/502/504 now and then. Every send to one conversation goes through one FIFO lock (so
a burst arrives in order) and a set of aiolimiter windows (so we stay under the limits rather than bounce off
them); what still fails transiently is retried with backoff. A 403 means the bot was removed from the
conversation: it is marked and skipped from then on, and the caller (the sync) carries on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiolimiter import AsyncLimiter
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import ConversationReference
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bot.storage.base import ConversationStore
from bot.teams.turn import card_activity

log = logging.getLogger(__name__)

RETRIABLE = {429, 412, 502, 503, 504}
# (requests, seconds): Teams' per-conversation limits, with a little headroom.
WINDOWS = ((6, 1.0), (7, 2.0), (55, 30.0), (1700, 3600.0))


class ConversationGone(Exception):
    """The bot can no longer post in this conversation (403: removed, or the conversation was deleted)."""


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    return int(status) if isinstance(status, int) else None


def _retriable(exc: BaseException) -> bool:
    return _status(exc) in RETRIABLE or isinstance(exc, ConnectionError | TimeoutError)


class _Lane:
    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.limiters = [AsyncLimiter(n, period) for n, period in WINDOWS]

    async def acquire(self) -> None:
        for limiter in self.limiters:
            await limiter.acquire()


class ProactiveSender:
    def __init__(
        self,
        adapter: CloudAdapter,
        conversations: ConversationStore,
        bot_app_id: str,
        *,
        attempts: int = 6,
        max_wait: float = 20.0,
    ) -> None:
        self._adapter = adapter
        self._conversations = conversations
        self._bot_app_id = bot_app_id
        self._lanes: dict[str, _Lane] = {}
        self._attempts = attempts
        self._max_wait = max_wait

    def _lane(self, key: str) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
        return lane

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

    async def _deliver(
        self, key: str, logic: Callable[[TurnContext], Awaitable[None]], *, thread_id: str
    ) -> None:
        stored = await self._conversations.get_reference(key)
        if stored is None:
            raise ConversationGone(f"no conversation reference for {key}")
        if stored.removed:
            raise ConversationGone(f"the bot was removed from {key}")
        reference = ConversationReference().deserialize(stored.reference)
        if thread_id and reference.conversation is not None and stored.conversation_type == "channel":
            # In a channel, a reply into the connection's own thread.
            base_id = str(reference.conversation.id).split(";", 1)[0]
            reference.conversation.id = f"{base_id};messageid={thread_id}"
        lane = self._lane(key)
        async with lane.lock:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception(_retriable),
                stop=stop_after_attempt(self._attempts),
                wait=wait_random_exponential(multiplier=0.5, max=self._max_wait),
                reraise=True,
            ):
                with attempt:
                    await lane.acquire()
                    try:
                        await self._adapter.continue_conversation(reference, logic, self._bot_app_id)
                    except Exception as exc:
                        status = _status(exc)
                        if status == 403:
                            await self._conversations.mark_removed(key)
                            log.warning("The bot was removed from a conversation; it is skipped from now on")
                            raise ConversationGone(f"403 from {key}") from exc
                        if status in RETRIABLE:
                            log.info("Teams answered %s; retrying with backoff", status)
                        raise
