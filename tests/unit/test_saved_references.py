"""ConnectorBot rewrites a conversation reference only when it changed (or is old, or on an install)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from botbuilder.core import ConversationState, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity

from bot.storage.base import ConversationRef
from bot.storage.sqlite import SqliteStore
from bot.teams.handler import ConnectorBot, SavedReferences
from bot.teams.router import Router
from bot.teams.state import StoreStorage
from bot.teams.turn import Turn

KEY = "msteams:a:conv"


class CountingStore(SqliteStore):
    saves = 0

    async def save_reference(self, ref: ConversationRef) -> None:
        self.saves += 1
        await super().save_reference(ref)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def _activity(activity_id: str, *, kind: str = "message", service_url: str = "http://connector-a/") -> Activity:
    body: dict[str, Any] = {
        "type": kind,
        "id": activity_id,
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": "29:alice", "name": "Alice", "aadObjectId": "aad-alice"},
        "conversation": {"id": "a:conv", "conversationType": "personal", "tenantId": "t1"},
        "recipient": {"id": "28:bot", "name": "Bot"},
        "locale": "en-GB",
        "text": "sync help" if kind == "message" else None,
        "channelData": {"tenant": {"id": "t1"}},
    }
    return Activity().deserialize(body)


async def _open(tmp_path: Path, clock: Clock) -> tuple[ConnectorBot, CountingStore]:
    store = await CountingStore.open(tmp_path / "connector.db")

    async def welcome(turn: Turn) -> None:
        await turn.send_text("welcome")

    bot = ConnectorBot(
        Router(), store, ConversationState(StoreStorage(store)), welcome,
        saved_references=SavedReferences(ttl=60.0, clock=clock),
    )
    return bot, store


async def _turn(bot: ConnectorBot, activity: Activity) -> None:
    await bot.on_turn(TurnContext(TestAdapter(), activity))


async def test_an_unchanged_reference_is_written_once(tmp_path: Path) -> None:
    clock = Clock()
    bot, store = await _open(tmp_path, clock)
    try:
        await _turn(bot, _activity("1"))
        await _turn(bot, _activity("2"))
        await _turn(bot, _activity("3"))
        assert store.saves == 1
        saved = await store.get_reference(KEY)
        assert saved is not None
        assert saved.reference["serviceUrl"] == "http://connector-a/"
    finally:
        await store.close()


async def test_a_moved_service_url_is_written_at_once(tmp_path: Path) -> None:
    clock = Clock()
    bot, store = await _open(tmp_path, clock)
    try:
        await _turn(bot, _activity("1"))
        await _turn(bot, _activity("2", service_url="http://connector-b/"))
        assert store.saves == 2
        saved = await store.get_reference(KEY)
        assert saved is not None
        assert saved.reference["serviceUrl"] == "http://connector-b/"
    finally:
        await store.close()


async def test_an_old_reference_is_rewritten(tmp_path: Path) -> None:
    clock = Clock()
    bot, store = await _open(tmp_path, clock)
    try:
        await _turn(bot, _activity("1"))
        clock.now += 61
        await _turn(bot, _activity("2"))
        assert store.saves == 2
    finally:
        await store.close()


async def test_an_install_always_rewrites_and_clears_removed(tmp_path: Path) -> None:
    clock = Clock()
    bot, store = await _open(tmp_path, clock)
    try:
        await _turn(bot, _activity("1"))
        await store.mark_removed(KEY)  # a proactive send got 403, perhaps in another process
        install = _activity("2", kind="installationUpdate")
        install.action = "add"
        await _turn(bot, install)
        assert store.saves == 2
        saved = await store.get_reference(KEY)
        assert saved is not None
        assert not saved.removed
    finally:
        await store.close()


def test_the_oldest_entry_is_forgotten_past_the_limit() -> None:
    saved = SavedReferences(ttl=60.0, max_entries=2, clock=Clock())
    saved.remember("a", 1)
    saved.remember("b", 2)
    saved.remember("c", 3)
    assert not saved.unchanged("a", 1)
    assert saved.unchanged("b", 2)
    assert saved.unchanged("c", 3)
    assert not saved.unchanged("c", 4)
