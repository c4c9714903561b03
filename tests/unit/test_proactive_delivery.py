"""ProactiveSender against the harness's fake Bot Connector, through botbuilder's real CloudAdapter.

Order under concurrency, Retry-After, backoff without it, 412/502, giving up, 403 (marked and skipped),
and the sliding-window limiter measured where it matters: at the connector.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from botbuilder.schema import (
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    ErrorResponseException,
)

from bot.config import Settings
from bot.storage.base import ConversationRef
from bot.storage.sqlite import SqliteStore
from bot.teams.adapter import build_adapter
from bot.teams.proactive import ConversationGone, ProactiveSender, RateWindow, http_status
from tests.scenario.botharness import FakeConnector

PERSONAL = "msteams:a:personal-1"
CHANNEL = "msteams:19:general@thread.tacv2"
FAST = (RateWindow(1000, 1.0),)


def reference(connector: FakeConnector, conversation_id: str, kind: str) -> ConversationRef:
    ref = ConversationReference(
        channel_id="msteams",
        service_url=connector.url,
        conversation=ConversationAccount(id=conversation_id, conversation_type=kind, tenant_id="t1"),
        bot=ChannelAccount(id="28:bot", name="Xero Sync"),
        user=ChannelAccount(id="29:alice", name="Alice"),
    )
    return ConversationRef(
        key=f"msteams:{conversation_id.split(';', 1)[0]}",
        teams_tenant_id="t1",
        conversation_type=kind,
        reference=ref.serialize(),
    )


class Env:
    def __init__(self, store: SqliteStore, connector: FakeConnector) -> None:
        self.store = store
        self.connector = connector
        self.adapter = build_adapter(Settings(_env_file=None, sandbox=True))  # type: ignore[call-arg]

    def sender(self, **kw: object) -> ProactiveSender:
        options: dict[str, object] = {"windows": FAST, "base_wait": 0.02, **kw}
        return ProactiveSender(self.adapter, self.store, "", **options)  # type: ignore[arg-type]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    store = await SqliteStore.open(tmp_path / "store.db")
    connector = FakeConnector()
    await connector.start()
    await store.save_reference(reference(connector, "a:personal-1", "personal"))
    # As the last activity in the channel left it: pointing into the thread someone spoke in.
    await store.save_reference(
        reference(connector, "19:general@thread.tacv2;messageid=1700000000111", "channel")
    )
    yield Env(store, connector)
    await connector.stop()
    await store.close()


async def test_cards_and_texts_arrive_with_their_ids_and_in_the_right_thread(env: Env) -> None:
    sender = env.sender()
    card = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "hello"}]}
    first = await sender.send_card(PERSONAL, card)
    assert first
    await sender.update_card(PERSONAL, first, {**card, "body": [{"type": "TextBlock", "text": "again"}]})
    in_thread = await sender.send_text(CHANNEL, "in the thread", thread_id="1700000000999")
    await sender.send_text(CHANNEL, "a new post")
    sent = env.connector.outbound
    assert [e.kind for e in sent] == ["reply", "update", "reply", "reply"]
    assert sent[1].activity_id == first
    assert "again" in sent[1].card_text
    assert sent[2].conversation_id == "19:general@thread.tacv2;messageid=1700000000999"
    assert sent[2].activity_id == in_thread
    # Not into whichever thread spoke last: a post of its own in the channel.
    assert sent[3].conversation_id == "19:general@thread.tacv2"


async def test_concurrent_sends_to_one_conversation_arrive_in_call_order(env: Env) -> None:
    sender = env.sender()
    await asyncio.gather(*(sender.send_text(PERSONAL, f"message {n}") for n in range(30)))
    assert env.connector.texts() == [f"message {n}" for n in range(30)]


async def test_429_waits_as_long_as_retry_after_says(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    sender = env.sender()
    env.connector.fail_next(429, times=2, retry_after=0.25)
    started = time.monotonic()
    with caplog.at_level(logging.INFO):
        await sender.send_text(PERSONAL, "after the throttle")
    assert time.monotonic() - started >= 0.5
    assert env.connector.texts() == ["after the throttle"]
    assert sender.retries == 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("429" in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


@pytest.mark.parametrize("status", [429, 412, 502, 504])
async def test_transient_answers_are_retried(env: Env, status: int) -> None:
    sender = env.sender()
    env.connector.fail_next(status, times=1)
    assert await sender.send_text(PERSONAL, f"after {status}")
    assert env.connector.texts() == [f"after {status}"]


async def test_it_gives_up_after_the_attempts(env: Env) -> None:
    sender = env.sender(attempts=3)
    env.connector.fail_next(429, times=5)
    with pytest.raises(ErrorResponseException) as failed:
        await sender.send_text(PERSONAL, "never")
    assert http_status(failed.value) == 429
    assert env.connector.texts() == []


async def test_a_403_marks_the_conversation_and_later_sends_skip_it(env: Env) -> None:
    sender = env.sender()
    env.connector.fail_next(403)
    with pytest.raises(ConversationGone):
        await sender.send_text(PERSONAL, "removed")
    stored = await env.store.get_reference(PERSONAL)
    assert stored is not None
    assert stored.removed
    before = env.connector.mark()
    with pytest.raises(ConversationGone):
        await sender.send_text(PERSONAL, "not even tried")
    assert env.connector.mark() == before
    # Other conversations are unaffected.
    assert await sender.send_text(CHANNEL, "still here")


async def test_an_unknown_conversation_is_gone(env: Env) -> None:
    with pytest.raises(ConversationGone):
        await env.sender().send_text("msteams:a:never-seen", "hello")


async def test_the_limiter_holds_at_the_connector(env: Env) -> None:
    # A window long enough that scheduling noise on a loaded machine cannot bunch receipts together.
    sender = env.sender(windows=(RateWindow(3, 1.0),))
    await asyncio.gather(*(sender.send_text(PERSONAL, f"m{n}") for n in range(8)))
    times = [e.at for e in env.connector.outbound]
    assert len(times) == 8
    # Server-side receipt times: any 1 s holds at most 3 (a little slack for the network hop).
    worst = max(sum(1 for u in times if t <= u < t + 0.9) for t in times)
    assert worst <= 3
    assert times[-1] - times[0] >= 1.9  # 8 sends at 3 per second need two full windows
