"""What the operations tests add to the shared bot harness (tests/scenario/botharness.py).

    async with open_bot(tmp_path, install=[install_ops()], run_scheduler=True) as bot:
        chat = bot.personal(ALICE)
        connection = await connect_in(bot, chat)      # a ready connection, set up in this chat by Alice
        await chat.say("status")
        ops(bot).notifier ...                          # the pieces under test

The operations feature (ProactiveSender, card book, TeamsNotifier, Disconnector, OpsCommands, RunWatcher)
is built by `open_bot_app` like the rest of the bot. `install_ops()` sets its seams (test rate windows,
a short watcher grace), points the engine's notifier at the Teams notifier, and exposes the pieces as
`ops(bot)`. The run watcher is not started: the tests drive it.

`ThrottlingConnector` is the harness's FakeConnector with Teams' behaviour under load: beyond a
per-conversation window it answers 429, alternately with and without Retry-After.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, replace
from typing import Any

import httpx
from aiohttp import web

from bot.storage.base import Connection
from bot.sync.ratelimit import RateWindow
from bot.sync.tables import CONNECTOR, CONNECTOR_SETTINGS
from bot.teams.app import AppSeams
from bot.teams.commands import OpsCommands
from bot.teams.disconnect import Disconnector
from bot.teams.notifier import TeamsNotifier
from bot.teams.proactive import ProactiveSender
from bot.teams.run_watcher import RunWatcher
from bot.teams.runcards import RunCardBook
from tests.scenario.botharness import (
    ALICE,
    BOT_ID,
    BOT_NAME,
    TENANT_ID,
    BotHarness,
    Chat,
    FakeConnector,
    TeamsUser,
)
from tests.scenario.botharness import TEST_WINDOWS as TEST_WINDOWS


@dataclass
class Ops:
    """The operations feature as `open_bot_app` built it."""

    sender: ProactiveSender
    book: RunCardBook
    notifier: TeamsNotifier
    disconnector: Disconnector
    commands: OpsCommands
    watcher: RunWatcher


def ops(bot: BotHarness) -> Ops:
    found = getattr(bot, "ops", None)
    assert isinstance(found, Ops), "install_ops() was not passed to open_bot"
    return found


@dataclass(frozen=True)
class InstallOps:
    """The installer `install_ops()` returns: seams for the app, then a reading of what it built."""

    windows: tuple[RateWindow, ...] = TEST_WINDOWS
    base_wait: float = 0.05
    watcher_grace: float = 0.3

    def configure(self, seams: AppSeams) -> AppSeams:
        return replace(
            seams,
            proactive_windows=self.windows,
            proactive_base_wait=self.base_wait,
            watcher_grace_seconds=self.watcher_grace,
        )

    def __call__(self, bot: BotHarness) -> None:
        app = bot.app
        # The sync engine reports to the Teams notifier, as in production.
        bot.notifier.target = app.notifier
        found = Ops(app.notifier.sender, app.notifier.book, app.notifier, app.disconnector, app.ops, app.watcher)
        bot.ops = found  # type: ignore[attr-defined]


def install_ops(
    *, windows: tuple[RateWindow, ...] = TEST_WINDOWS, base_wait: float = 0.05, watcher_grace: float = 0.3
) -> InstallOps:
    return InstallOps(windows, base_wait, watcher_grace)


async def connect_in(
    bot: BotHarness,
    chat: Chat,
    *,
    user: TeamsUser = ALICE,
    name: str = "",
    plan: str = "premium",
    **connect: Any,
) -> Connection:
    """A ready connection (signed in at both sandboxes, rows in Dynamics) that `user` set up in `chat`.

    The bot is installed in the chat first, as it is before any setup: that is where it learns the
    conversation reference it posts notifications with."""
    if await bot.store.get_reference(chat.key) is None:
        mark = bot.connector.mark()
        await chat.install(user)
        await bot.connector.wait_for(lambda e: e.card is not None, since=mark)
    connection = await bot.harness.connect(name=name, plan=plan, **connect)
    thread = ""
    if chat.is_channel:
        thread = f"1{abs(hash(connection.id)) % 10**12:012d}"
    return await bot.store.save_connection(
        connection.model_copy(
            update={
                "conversation_key": chat.key,
                "teams_tenant_id": TENANT_ID,
                "created_by_aad_id": user.aad_object_id,
                "created_by_name": user.name,
                "thread_activity_id": thread,
            }
        )
    )


class GroupChat(Chat):
    """A group chat with the bot: like a personal chat, but the bot only hears messages that @mention it."""

    def _conversation(self, thread: str) -> dict[str, Any]:
        return {
            "id": self.conversation_id,
            "conversationType": "groupChat",
            "isGroup": True,
            "tenantId": TENANT_ID,
        }

    async def say(self, text: str, *, user: TeamsUser | None = None, thread: str = "") -> httpx.Response:
        mention = f"<at>{BOT_NAME}</at>"
        activity = self.activity("message", user, text=f"{mention} {text}", textFormat="plain")
        activity["entities"].append(
            {"type": "mention", "mentioned": {"id": BOT_ID, "name": BOT_NAME}, "text": mention}
        )
        return await self.post(activity)


def group_chat(bot: BotHarness, user: TeamsUser = ALICE) -> GroupChat:
    return GroupChat(bot, user, conversation_id=f"19:group-{uuid.uuid4().hex[:8]}@thread.v2")


def connector_row(bot: BotHarness, connection: Connection) -> dict[str, Any]:
    """The connection's Connector row as Dynamics holds it (read in the sandbox: our tokens may be gone)."""
    env = connection.dataverse_env_url.rstrip("/").rsplit("/", 1)[-1]
    rows = [
        r
        for r in bot.sandboxes.dataverse.rows(env, CONNECTOR.entity_set)
        if r.get("xdc_connectionid") == connection.id
    ]
    assert len(rows) == 1, rows
    return rows[0]


def settings_row(bot: BotHarness, connection: Connection) -> dict[str, Any]:
    env = connection.dataverse_env_url.rstrip("/").rsplit("/", 1)[-1]
    row_id = connection.dataverse_connector_row_id
    rows = [
        r
        for r in bot.sandboxes.dataverse.rows(env, CONNECTOR_SETTINGS.entity_set)
        if r.get("_xdc_connectorid_value") == row_id
    ]
    assert len(rows) == 1, rows
    return rows[0]


class ThrottlingConnector(FakeConnector):
    """Answers 429 like Teams under load: to sends beyond `limit` per `seconds` in one conversation, and
    (so a test sees 429s however fast the machine is) to every `every`-th request. Every other 429
    carries Retry-After; `throttled` counts them with and without the header."""

    def __init__(
        self, limit: int = 8, seconds: float = 0.5, retry_after: float = 0.1, every: int = 0
    ) -> None:
        super().__init__()
        self.limit = limit
        self.seconds = seconds
        self.retry_after = retry_after
        self.every = every
        self.requests = 0
        self.throttled: dict[str, int] = {"with": 0, "without": 0}
        self._recent: dict[str, deque[float]] = defaultdict(deque)

    def _throttle(self, request: web.Request) -> web.Response | None:
        self.requests += 1
        conversation = request.match_info.get("cid", "").split(";", 1)[0]
        now = asyncio.get_running_loop().time()
        recent = self._recent[conversation]
        while recent and now - recent[0] > self.seconds:
            recent.popleft()
        if len(recent) >= self.limit or (self.every and self.requests % self.every == 0):
            with_header = (self.throttled["with"] + self.throttled["without"]) % 2 == 0
            self.throttled["with" if with_header else "without"] += 1
            headers = {"Retry-After": str(self.retry_after)} if with_header else {}
            body = {"error": {"code": "TooManyRequests", "message": "Too many requests"}}
            return web.json_response(body, status=429, headers=headers)
        recent.append(now)
        return None

    async def _send(self, request: web.Request) -> web.Response:
        return self._throttle(request) or await super()._send(request)

    async def _update(self, request: web.Request) -> web.Response:
        return self._throttle(request) or await super()._update(request)
