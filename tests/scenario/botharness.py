"""Scenario-test harness: the bot's real pieces, a fake Bot Connector, Teams users, and a browser.

    async with open_bot(tmp_path) as bot:                       # sandboxes + store + bot on ephemeral ports
        chat = bot.personal(ALICE)                               # Alice's 1:1 chat with the bot
        await chat.say("sync connect")
        card = await bot.connector.wait_for_card("Connect to Xero")
        page = await bot.browser().xero(card.action_url("Connect to Xero"))   # login + consent + callback
        await chat.say(page.code)                                # the code, typed back as Alice

What is real: the sandboxes (Xero, Entra ID over TLS, Dataverse), the store (SQLite, or Redis with
`redis_url`), the sync runtime (`open_sync_runtime`), `build_adapter` in anonymous mode, `Router`,
`ConnectorBot`, `ConversationState` over `StoreStorage`, `SetupFeature`, the `/api/messages` endpoint and
the OAuth routes, all served by aiohttp on a real port. Activities go in over HTTP exactly as the Teams
channel posts them; everything the bot sends (replies, proactive messages, card updates, new channel
threads) reaches `FakeConnector`, which answers like the Bot Connector and records it all.

Other features plug in with `install=[fn]`: each `fn(bot)` runs after the router and the setup feature
exist and before the server starts; it may register commands/verbs on `bot.router`, add aiohttp routes to
`bot.extra_routes`, or point `bot.notifier.target` at the Teams notifier (the sync engine reports through
`bot.notifier`). `bot.restart()` builds a new bot (new adapter, router, features, clients, store handle)
on the same store, port and sandboxes: what survives it was in the store. `run_scheduler=True` starts the
sync scheduler loop, so scheduled runs really run. `use_app=True` serves the shipped composition
(`bot.teams.app.open_bot_app`) instead, to prove the wiring that ships.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from botbuilder.core import ConversationState

from bot.config import Settings
from bot.dialogs import SetupDeps, SetupFeature, SetupOptions
from bot.solution import build_zip
from bot.storage.base import Connection, RunRecord, Store
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore
from bot.sync.discovery import DiscoveryClient
from bot.sync.ports import AttentionReason, Notifier
from bot.sync.runtime import SyncRuntime, open_sync_runtime
from bot.sync.scheduler import Scheduler
from bot.sync.service import SyncService
from bot.teams.adapter import build_adapter
from bot.teams.endpoint import messages_handler
from bot.teams.handler import ConnectorBot
from bot.teams.router import Router
from bot.teams.state import StoreStorage
from bot.teams.turn import Turn
from bot.web.solution import download_url, solution_routes
from cards import WelcomeCardData, render_welcome_card
from sandbox.entra import ALICE as ENTRA_ALICE
from sandbox.entra import CONTOSO
from sandbox.entra.directory import sandbox_uuid
from sandbox.runner import Sandboxes
from tests.conftest import free_port
from tests.integration.harness import Harness, RecordingNotifier, sandbox_settings
from tests.support.signin_pages import Browser, Page

__all__ = [
    "ALICE",
    "BOB",
    "BOT_NAME",
    "TENANT_ID",
    "BotHarness",
    "Browser",
    "Chat",
    "FakeConnector",
    "Outbound",
    "Page",
    "RelayNotifier",
    "SetupRun",
    "TeamsUser",
    "connect_via_chat",
    "open_bot",
    "start_setup",
]

BOT_ID = "28:xero-sync-bot"
BOT_NAME = "Xero Sync"
TENANT_ID = CONTOSO.id
Installer = Callable[["BotHarness"], Awaitable[None] | None]


@dataclass(frozen=True)
class TeamsUser:
    name: str
    aad_object_id: str
    timezone: str = "Europe/London"  # sent as the clientInfo entity, as the Teams client does
    tenant_id: str = TENANT_ID

    @property
    def id(self) -> str:
        return f"29:{self.aad_object_id}"

    def account(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "aadObjectId": self.aad_object_id}


# Alice in Teams is the same Entra user as the Entra sandbox's Alice (a Dynamics sign-in as her proves it).
ALICE = TeamsUser("Alice Anders", ENTRA_ALICE.oid)
BOB = TeamsUser("Bob Brown", sandbox_uuid("user:bob@contoso.example"), timezone="Europe/Paris")


@dataclass
class RelayNotifier:
    """The Notifier the sync engine holds: forwards to `target`, which a feature may swap (default: a recorder)."""

    target: Notifier = field(default_factory=RecordingNotifier)

    async def run_started(self, connection: Connection, run: RunRecord) -> None:
        await self.target.run_started(connection, run)

    async def run_progress(self, connection: Connection, run: RunRecord, stage: str) -> None:
        await self.target.run_progress(connection, run, stage)

    async def run_finished(self, connection: Connection, run: RunRecord) -> None:
        await self.target.run_finished(connection, run)

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: str) -> None:
        await self.target.needs_attention(connection, reason, detail)



# ---- the fake Bot Connector -----------------------------------------------------------------------------


@dataclass
class Outbound:
    """One call the bot made to the Bot Connector."""

    kind: str  # "send" (new activity), "reply", "update", "delete", "create" (new conversation / channel thread)
    conversation_id: str
    activity_id: str
    activity: dict[str, Any]
    reply_to_id: str = ""
    at: float = 0.0  # loop time

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content = attachment.get("content")
                return content if isinstance(content, dict) else None
        return None

    @property
    def card_text(self) -> str:
        """Every text a person reads on the card (TextBlocks, TextRuns, facts, choice titles, action titles)."""
        parts: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key in ("text", "title", "value", "label", "placeholder"):
                    if isinstance(node.get(key), str) and (key != "value" or node.get("type") != "Input.Text"):
                        parts.append(node[key])
                for value in node.values():
                    if isinstance(value, dict | list):
                        walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.card or {})
        return "\n".join(parts)

    def actions(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if str(node.get("type", "")).startswith("Action."):
                    found.append(node)
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.card or {})
        return found

    def action(self, title: str) -> dict[str, Any]:
        for action in self.actions():
            if action.get("title") == title:
                return action
        raise AssertionError(f"no action {title!r} on the card; it has {[a.get('title') for a in self.actions()]}")

    def action_url(self, title: str) -> str:
        return str(self.action(title)["url"])

    def has_action(self, title: str) -> bool:
        return any(a.get("title") == title for a in self.actions())

    def inputs(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if str(node.get("type", "")).startswith("Input.") and isinstance(node.get("id"), str):
                    found[node["id"]] = node
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        walk(self.card or {})
        return found


# The error codes the Bot Connector answers with, per status.
_FAULT_CODES = {
    403: "BotNotInConversationRoster",
    404: "ConversationNotFound",
    412: "PreconditionFailed",
    413: "MessageSizeTooBig",
    429: "TooManyRequests",
    502: "BadGateway",
    504: "GatewayTimeout",
}


class FakeConnector:
    """The Bot Connector REST API as the bot uses it, on a real port; records every call.

    POST /v3/conversations -> 201 {"id", "activityId"} (a channel thread: `<channel>;messageid=<id>`);
    POST .../activities[/{replyTo}] -> 201 {"id"}; PUT .../activities/{id} -> 200 {"id"}; DELETE -> 200;
    GET .../members[/{id}], .../pagedmembers, /v3/teams/{id}[/conversations] from `roster`.
    `fail_next(status, times, retry_after)` answers the next sends/updates with an error instead.
    """

    def __init__(self) -> None:
        self.outbound: list[Outbound] = []
        self.roster: list[dict[str, Any]] = []
        self._faults: list[tuple[int, float | None]] = []
        self._changed = asyncio.Condition()
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._send)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_delete("/v3/conversations/{cid}/activities/{aid}", self._delete)
        app.router.add_get("/v3/conversations/{cid}/members", self._members)
        app.router.add_get("/v3/conversations/{cid}/pagedmembers", self._paged)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self._member)
        app.router.add_get("/v3/teams/{tid}", self._team)
        app.router.add_get("/v3/teams/{tid}/conversations", self._channels)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        self._faults += [(status, retry_after)] * times

    def _fault(self) -> web.Response | None:
        if not self._faults:
            return None
        status, retry_after = self._faults.pop(0)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        code = _FAULT_CODES.get(status, "ServiceError")
        return web.json_response({"error": {"code": code, "message": "injected"}}, status=status, headers=headers)

    def _new_id(self) -> str:
        self._counter += 1
        return f"{1700000000000 + self._counter}"

    async def _record(self, entry: Outbound) -> None:
        entry.at = asyncio.get_running_loop().time()
        async with self._changed:
            self.outbound.append(entry)
            self._changed.notify_all()

    async def _create(self, request: web.Request) -> web.Response:
        if (fault := self._fault()) is not None:
            return fault
        body = await request.json()
        aid = self._new_id()
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        cid = f"{channel};messageid={aid}" if channel else f"a:created-{aid}"
        activity = body.get("activity") or {}
        await self._record(Outbound("create", cid, aid, {**activity, "id": aid}))
        return web.json_response({"id": cid, "activityId": aid, "serviceUrl": self.url}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        if (fault := self._fault()) is not None:
            return fault
        body = await request.json()
        aid = self._new_id()
        reply_to = request.match_info.get("aid", "")
        kind = "reply" if reply_to else "send"
        await self._record(Outbound(kind, request.match_info["cid"], aid, {**body, "id": aid}, reply_to))
        return web.json_response({"id": aid}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if (fault := self._fault()) is not None:
            return fault
        body = await request.json()
        aid = request.match_info["aid"]
        await self._record(Outbound("update", request.match_info["cid"], aid, {**body, "id": aid}))
        return web.json_response({"id": aid}, status=200)

    async def _delete(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        await self._record(Outbound("delete", request.match_info["cid"], aid, {}))
        return web.json_response({}, status=200)

    async def _members(self, request: web.Request) -> web.Response:
        return web.json_response(self.roster)

    async def _paged(self, request: web.Request) -> web.Response:
        return web.json_response({"members": self.roster})

    async def _member(self, request: web.Request) -> web.Response:
        wanted = request.match_info["mid"]
        for member in self.roster:
            if wanted in (member.get("id"), member.get("aadObjectId")):
                return web.json_response(member)
        return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)

    async def _team(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["tid"], "name": "Finance", "aadGroupId": str(uuid.uuid4())})

    async def _channels(self, request: web.Request) -> web.Response:
        return web.json_response({"conversations": [{"id": request.match_info["tid"], "name": "General"}]})

    # ---- reading what the bot sent ------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the log: `wait_for(..., since=mark)` looks only at what came after."""
        return len(self.outbound)

    def latest(self, activity_id: str) -> Outbound | None:
        """The current version of an activity (its last send or update)."""
        for entry in reversed(self.outbound):
            if entry.activity_id == activity_id and entry.kind != "delete":
                return entry
        return None

    def texts(self, since: int = 0) -> list[str]:
        return [e.text for e in self.outbound[since:] if e.kind in ("send", "reply", "create") and e.text]

    def sent_cards(self, since: int = 0) -> list[Outbound]:
        return [e for e in self.outbound[since:] if e.kind in ("send", "reply", "create") and e.card is not None]

    async def wait_for(
        self, predicate: Callable[[Outbound], bool], *, since: int = 0, timeout: float = 10.0
    ) -> Outbound:
        """The first call (from `since` on) that matches; waits for it up to `timeout` seconds."""

        def find() -> Outbound | None:
            return next((e for e in self.outbound[since:] if predicate(e)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), timeout)
            except TimeoutError:
                seen = [(e.kind, e.text[:80] or e.card_text[:80]) for e in self.outbound[since:]]
                raise AssertionError(f"nothing matched within {timeout}s; the bot sent {seen}") from None
        found = find()
        assert found is not None
        return found

    async def wait_for_text(self, fragment: str, *, since: int = 0, timeout: float = 10.0) -> Outbound:
        return await self.wait_for(
            lambda e: e.kind in ("send", "reply", "create") and fragment in e.text, since=since, timeout=timeout
        )

    async def wait_for_card(self, fragment: str, *, since: int = 0, timeout: float = 10.0) -> Outbound:
        """A card (new or updated) whose text contains `fragment`."""
        return await self.wait_for(
            lambda e: e.card is not None and fragment in e.card_text, since=since, timeout=timeout
        )

# ---- conversations ------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Chat:
    """One Teams conversation with the bot, as the Teams channel would post its activities."""

    def __init__(
        self, bot: BotHarness, user: TeamsUser, *, conversation_id: str, team_id: str = "", channel_id: str = ""
    ) -> None:
        self.bot = bot
        self.user = user
        self.conversation_id = conversation_id
        self.team_id = team_id
        self.channel_id = channel_id

    @property
    def is_channel(self) -> bool:
        return bool(self.channel_id)

    @property
    def key(self) -> str:
        """The store's conversation key for this chat (channel-wide in a channel)."""
        return f"msteams:{self.conversation_id}"

    def _conversation(self, thread: str) -> dict[str, Any]:
        if not self.is_channel:
            return {"id": self.conversation_id, "conversationType": "personal", "tenantId": TENANT_ID}
        return {
            "id": f"{self.channel_id};messageid={thread}",
            "conversationType": "channel",
            "isGroup": True,
            "tenantId": TENANT_ID,
        }

    def activity(
        self, kind: str, user: TeamsUser | None = None, *, thread: str = "", **fields: Any
    ) -> dict[str, Any]:
        who = user or self.user
        activity_id = fields.pop("id", None) or f"1{uuid.uuid4().int % 10**12:012d}"
        channel_data: dict[str, Any] = {"tenant": {"id": who.tenant_id}}
        if self.is_channel:
            channel_data.update(
                teamsChannelId=self.channel_id,
                teamsTeamId=self.team_id,
                channel={"id": self.channel_id, "name": "General"},
                team={"id": self.team_id, "name": "Finance"},
            )
        conversation = self._conversation(thread or activity_id)
        conversation["tenantId"] = who.tenant_id
        return {
            "type": kind,
            "id": activity_id,
            "timestamp": _now(),
            "localTimestamp": _now(),
            "channelId": "msteams",
            "serviceUrl": self.bot.connector.url,
            "from": who.account(),
            "conversation": conversation,
            "recipient": {"id": BOT_ID, "name": BOT_NAME},
            "locale": "en-GB",
            "entities": [
                {"type": "clientInfo", "locale": "en-GB", "country": "GB", "platform": "Web", "timezone": who.timezone}
            ],
            "channelData": channel_data,
            **fields,
        }

    async def post(self, activity: dict[str, Any]) -> httpx.Response:
        return await self.bot.http.post(f"{self.bot.url}/api/messages", json=activity)

    async def say(self, text: str, *, user: TeamsUser | None = None, thread: str = "") -> httpx.Response:
        """A message; in a channel it @mentions the bot, as a new post unless `thread` names one."""
        fields: dict[str, Any] = {"text": text, "textFormat": "plain"}
        if self.is_channel:
            mention = f"<at>{BOT_NAME}</at>"
            fields["text"] = f"{mention} {text}"
            extra = {"type": "mention", "mentioned": {"id": BOT_ID, "name": BOT_NAME}, "text": mention}
            activity = self.activity("message", user, thread=thread, **fields)
            activity["entities"].append(extra)
        else:
            activity = self.activity("message", user, **fields)
        return await self.post(activity)

    def _thread_of(self, card: Outbound) -> str:
        if not self.is_channel:
            return ""
        _, _, thread = card.conversation_id.partition(";messageid=")
        return thread or card.activity_id

    async def submit(
        self, card: Outbound, data: dict[str, Any], *, user: TeamsUser | None = None
    ) -> httpx.Response:
        """An Action.Submit on `card`: `data` is the action's data merged with the card's inputs."""
        activity = self.activity("message", user, thread=self._thread_of(card), value=data, replyToId=card.activity_id)
        return await self.post(activity)

    async def click(
        self, card: Outbound, title: str, inputs: dict[str, Any] | None = None, *, user: TeamsUser | None = None
    ) -> httpx.Response:
        """Press the card's Action.Submit called `title`, with these input values."""
        action = card.action(title)
        assert action.get("type") == "Action.Submit", f"{title} is not a submit action: {action}"
        return await self.submit(card, {**(inputs or {}), **action.get("data", {})}, user=user)

    async def invoke(
        self, name: str, value: Any, *, user: TeamsUser | None = None, card: Outbound | None = None
    ) -> httpx.Response:
        thread = self._thread_of(card) if card is not None else ""
        fields: dict[str, Any] = {"name": name, "value": value}
        if card is not None:
            fields["replyToId"] = card.activity_id
        return await self.post(self.activity("invoke", user, thread=thread, **fields))

    async def verify_state(self, code: str, *, user: TeamsUser | None = None, card: Outbound | None = None) -> int:
        """What Teams sends after the sign-in popup called notifySuccess(code)."""
        response = await self.invoke("signin/verifyState", {"state": code}, user=user, card=card)
        return response.status_code

    async def install(self, user: TeamsUser | None = None) -> httpx.Response:
        activity = self.activity("installationUpdate", user, action="add")
        return await self.post(activity)


# ---- the bot ------------------------------------------------------------------------------------------


class BotHarness:
    def __init__(
        self,
        sandboxes: Sandboxes,
        connector: FakeConnector,
        settings: Settings,
        data_dir: Path,
        *,
        options: SetupOptions,
        install: Sequence[Installer],
        run_scheduler: bool,
        redis_url: str,
        use_app: bool = False,
    ) -> None:
        self.sandboxes = sandboxes
        self.connector = connector
        self.settings = settings
        self.data_dir = data_dir
        self.options = options
        self._install = list(install)
        self._run_scheduler = run_scheduler
        self._redis_url = redis_url
        self._use_app = use_app
        self.url = settings.public_base_url
        self.http = httpx.AsyncClient(timeout=30)
        self._stack: AsyncExitStack | None = None
        self._browsers: list[Browser] = []
        self.restarts = 0

    # The pieces, rebuilt by every start().
    store: Store
    runtime: SyncRuntime
    notifier: RelayNotifier
    scheduler: Scheduler
    sync: SyncService
    router: Router
    setup: SetupFeature
    bot: ConnectorBot
    harness: Harness  # the integration harness over the same pieces (connect(), rows(), run())
    extra_routes: list[web.RouteDef]
    app: Any  # with use_app: the BotApp

    async def start(self) -> None:
        if self._use_app:
            await self._start_app()
            return
        stack = AsyncExitStack()
        self._stack = stack
        self.store = await self._open_store()
        stack.push_async_callback(self.store.close)
        self.notifier = RelayNotifier()
        self.runtime = await stack.enter_async_context(
            open_sync_runtime(self.settings, self.store, self.notifier, clock=self.sandboxes.clock)
        )
        self.scheduler = Scheduler(
            self.store,
            self.runtime.engine,
            owner=f"scenario-{uuid.uuid4().hex[:8]}",
            poll_seconds=self.settings.scheduler_poll_seconds,
            lease_seconds=self.settings.run_lease_seconds,
            clock=self.sandboxes.clock,
        )
        self.sync = SyncService(self.store, self.scheduler, dataverse_factory=self.runtime.dataverse_factory)
        adapter = build_adapter(self.settings)
        self.router = Router()
        self.setup = SetupFeature(
            SetupDeps(
                settings=self.settings,
                store=self.store,
                cipher=self.runtime.cipher,
                adapter=adapter,
                http=self.runtime.http,
                xero_oauth=self.runtime.xero_oauth,
                xero_tokens=self.runtime.xero_tokens,
                xero=self.runtime.xero,
                dynamics_auth=self.runtime.dynamics_auth,
                discovery=DiscoveryClient(self.settings, self.runtime.http),
                scheduler=self.sync,
            ),
            self.options,
        )
        self.setup.register(self.router)
        self.extra_routes = []
        self.adapter = adapter
        self.harness = Harness(
            self.sandboxes, self.settings, self.store, self.runtime, RecordingNotifier(), self.data_dir
        )
        for install in self._install:
            result = install(self)
            if inspect.isawaitable(result):
                await result
        conversation_state = ConversationState(StoreStorage(self.store))
        self.bot = ConnectorBot(
            self.router, self.store, conversation_state, self._welcome, verify_state=self.setup.verify_state
        )
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.router.add_post("/api/messages", messages_handler(adapter, self.bot))
        app.add_routes(self.setup.routes())
        app.add_routes(solution_routes())
        app.add_routes(self.extra_routes)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        port = int(self.url.rsplit(":", 1)[1])
        await web.TCPSite(runner, "127.0.0.1", port).start()
        if self._run_scheduler:
            await self.scheduler.start()
            stack.push_async_callback(self.scheduler.stop, 5.0)

    async def _start_app(self) -> None:
        """The shipped wiring (`bot.teams.app.open_bot_app`) instead of the pieces assembled here. Its
        engine and scheduler keep the system clock, and `notifier` only mirrors the app's notifier."""
        from bot.teams.app import open_bot_app

        stack = AsyncExitStack()
        self._stack = stack
        self.store = await self._open_store()
        stack.push_async_callback(self.store.close)
        app = await stack.enter_async_context(open_bot_app(self.settings, self.store))
        self.app = app
        self.runtime, self.adapter, self.router, self.setup = app.runtime, app.adapter, app.router, app.setup
        self.bot, self.scheduler, self.sync = app.bot, app.scheduler, app.sync
        self.notifier = RelayNotifier(target=app.notifier)
        self.extra_routes = []
        self.harness = Harness(
            self.sandboxes, self.settings, self.store, self.runtime, RecordingNotifier(), self.data_dir
        )
        for install in self._install:
            result = install(self)
            if inspect.isawaitable(result):
                await result
        web_app = web.Application(client_max_size=self.settings.max_body_bytes)
        web_app.add_routes([*app.routes(), *self.extra_routes])
        runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=1)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, "127.0.0.1", int(self.url.rsplit(":", 1)[1])).start()
        await app.start()
        stack.push_async_callback(app.stop)

    async def _open_store(self) -> Store:
        if self._redis_url:
            return await RedisStore.open(self._redis_url)
        return await SqliteStore.open(self.data_dir / "connector.db")

    async def _welcome(self, turn: Turn) -> None:
        await turn.send_card(render_welcome_card(WelcomeCardData(bot_name=BOT_NAME, needs_mention=turn.is_channel)))

    async def stop(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
            self._stack = None

    async def restart(self) -> None:
        """A new bot process on the same store: nothing carried over in memory."""
        await self.stop()
        self.restarts += 1
        await self.start()

    async def close(self) -> None:
        await self.stop()
        for browser in self._browsers:
            await browser.close()
        await self.http.aclose()

    # ---- helpers for tests ---------------------------------------------------------------------------

    def personal(self, user: TeamsUser) -> Chat:
        return Chat(self, user, conversation_id=f"a:personal-{user.aad_object_id[:8]}-{uuid.uuid4().hex[:6]}")

    def channel(self, user: TeamsUser, *, team: str = "finance", channel: str = "general") -> Chat:
        suffix = uuid.uuid4().hex[:6]
        return Chat(
            self,
            user,
            conversation_id=f"19:{channel}-{suffix}@thread.tacv2",
            team_id=f"19:{team}-{suffix}@thread.tacv2",
            channel_id=f"19:{channel}-{suffix}@thread.tacv2",
        )

    def browser(self) -> Browser:
        browser = Browser(self.settings)
        self._browsers.append(browser)
        return browser

    async def connections(self, chat: Chat | None = None) -> list[Connection]:
        return await self.store.list_connections(chat.key if chat is not None else None)

    async def wait_until(self, check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("condition not met in time")
            await asyncio.sleep(0.02)


def make_settings(
    sandboxes: Sandboxes, public_base_url: str, data_dir: Path, redis_url: str = "", *, run_scheduler: bool = False
) -> Settings:
    return sandbox_settings(
        sandboxes,
        public_base_url,
        data_dir,
        redis_url,
        scheduler_poll_seconds=0.1,
        run_lease_seconds=5.0,
        run_scheduler=run_scheduler,
    )


APPSOURCE_URL = "https://appsource.microsoft.com/product/dynamics-365/xerodynamicsconnector"


@asynccontextmanager
async def open_bot(
    tmp_path: Path,
    *,
    redis_url: str = "",
    options: SetupOptions | None = None,
    install: Sequence[Installer] = (),
    run_scheduler: bool = False,
    use_app: bool = False,
) -> AsyncIterator[BotHarness]:
    """Sandboxes, a fake Bot Connector and the bot on ephemeral ports; everything stopped on exit.

    `use_app=True` serves the shipped composition (`bot.teams.app.open_bot_app`: ops commands, Teams
    notifier, welcome) instead of the harness's own assembly of the real pieces."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        # The seeded "installed" environments import the solution we ship (the sandbox cannot build it).
        sandboxes = Sandboxes(tmp_path / "sandbox", solution_zip=build_zip(managed=True))
        await sandboxes.start()
        stack.push_async_callback(sandboxes.stop)
        connector = FakeConnector()
        await connector.start()
        stack.push_async_callback(connector.stop)
        url = f"http://127.0.0.1:{free_port()}"
        sandboxes.register_bot(url)
        settings = make_settings(sandboxes, url, data_dir, redis_url, run_scheduler=run_scheduler)
        bot = BotHarness(
            sandboxes,
            connector,
            settings,
            data_dir,
            # As production wires them (bot.teams.app), with an AppSource listing configured.
            options=options
            or SetupOptions(solution_zip_url=download_url(url), appsource_url=APPSOURCE_URL, install_poll_seconds=0.05),
            install=install,
            run_scheduler=run_scheduler,
            redis_url=redis_url,
            use_app=use_app,
        )
        stack.push_async_callback(bot.close)
        await bot.start()
        yield bot


# ---- driving the setup as a person would ----------------------------------------------------------------


@dataclass
class SetupRun:
    """Where one conversational setup stands: its checklist card and the thread it lives in."""

    chat: Chat
    user: TeamsUser
    card_id: str
    thread: str  # in a channel, the setup's own thread; "" in a personal chat
    browser: Browser
    settings_card_id: str = ""

    def card(self) -> Outbound:
        current = self.chat.bot.connector.latest(self.card_id)
        assert current is not None
        return current

    async def say(self, text: str, *, user: TeamsUser | None = None) -> httpx.Response:
        return await self.chat.say(text, user=user or self.user, thread=self.thread)

    async def click(self, title: str, inputs: dict[str, Any] | None = None, *, user: TeamsUser | None = None) -> None:
        response = await self.chat.click(self.card(), title, inputs, user=user or self.user)
        assert response.status_code < 300, response.text

    async def card_where(self, check: Callable[[Outbound], bool], timeout: float = 10.0) -> Outbound:
        """Wait until the checklist card, as it stands now (its latest version), passes `check`."""
        connector = self.chat.bot.connector
        return await connector.wait_for(
            lambda e: e.activity_id == self.card_id and connector.latest(self.card_id) is e and check(e),
            timeout=timeout,
        )

    async def card_with(self, fragment: str, timeout: float = 10.0) -> Outbound:
        """Wait until the checklist card shows `fragment`."""
        return await self.card_where(lambda e: fragment in e.card_text, timeout)

    async def card_with_action(self, title: str, timeout: float = 10.0) -> Outbound:
        """Wait until the checklist card has a button called `title`."""
        return await self.card_where(lambda e: e.has_action(title), timeout)

    async def sign_in_xero(self, **kw: Any) -> Page:
        """Connect to Xero in the browser (see Browser.xero for the options)."""
        card = await self.card_with_action("Connect to Xero")
        return await self.browser.xero(card.action_url("Connect to Xero"), **kw)

    async def sign_in_dynamics(self, upn: str = ENTRA_ALICE.upn, password: str = ENTRA_ALICE.password, **kw: Any) -> Page:
        card = await self.card_with_action("Connect to Dynamics 365")
        return await self.browser.entra(card.action_url("Connect to Dynamics 365"), upn=upn, password=password, **kw)

    async def settings_card(self, timeout: float = 10.0) -> Outbound:
        connector = self.chat.bot.connector
        if not self.settings_card_id:
            card = await connector.wait_for(
                lambda e: e.kind != "update" and e.card is not None and "Last run (UTC)" in e.card_text,
                timeout=timeout,
            )
            self.settings_card_id = card.activity_id
        current = connector.latest(self.settings_card_id)
        assert current is not None
        return current

    async def save_settings(
        self,
        name: str,
        plan: str = "standard",
        timezone: str = "Europe/London",
        notify_mode: str = "every_run",
        *,
        user: TeamsUser | None = None,
    ) -> httpx.Response:
        card = await self.settings_card()
        inputs = {"connection_name": name, "plan": plan, "timezone": timezone, "notify_mode": notify_mode}
        return await self.chat.click(card, "Save", inputs, user=user or self.user)


async def start_setup(chat: Chat, *, user: TeamsUser | None = None) -> SetupRun:
    """`sync connect` in the chat; returns the run once the checklist card is out."""
    who = user or chat.user
    mark = chat.bot.connector.mark()
    response = await chat.say("sync connect", user=who)
    assert response.status_code < 300, response.text
    card = await chat.bot.connector.wait_for(
        lambda e: e.kind != "update" and e.card is not None and "Set up a connection" in e.card_text, since=mark
    )
    _, _, thread = card.conversation_id.partition(";messageid=")
    return SetupRun(chat, who, card.activity_id, thread if chat.is_channel else "", chat.bot.browser())


async def connect_via_chat(
    chat: Chat,
    *,
    user: TeamsUser | None = None,
    tenant_id: str | None = None,
    environment: str | None = None,
    name: str = "",
    plan: str = "standard",
    timezone: str = "Europe/London",
    dynamics_upn: str = ENTRA_ALICE.upn,
    dynamics_password: str = ENTRA_ALICE.password,
) -> Connection:
    """The whole setup through the chat and the sign-in pages; returns the connection it created.

    Xero: demo@xero.example allowing one organisation (`tenant_id`, default the first offered);
    Dynamics: Alice by default; `environment` picks by name when several are offered (default the first)."""
    run = await start_setup(chat, user=user)
    page = await run.sign_in_xero(tenants=[tenant_id] if tenant_id else None)
    assert page.code, page.text[:400]
    await run.say(page.code)
    page = await run.sign_in_dynamics(dynamics_upn, dynamics_password)
    if page.code:
        await run.say(page.code)
    card = await run.chat.bot.connector.wait_for(
        lambda e: e.activity_id == run.card_id
        and e.card is not None
        and ("Use this environment" in e.card_text or "Connected to Dynamics 365" in e.card_text)
    )
    if card.has_action("Use this environment"):
        choices = card.inputs()["environment_id"]["choices"]
        wanted = next((c for c in choices if environment in (None, c["title"], c["value"])), None)
        assert wanted is not None, f"no environment {environment!r} in {choices}"
        await run.click("Use this environment", {"environment_id": wanted["value"]})
    settings = await run.settings_card()
    final_name = name or str(settings.inputs()["connection_name"].get("value", "")) or f"Conn {uuid.uuid4().hex[:4]}"
    mark = chat.bot.connector.mark()
    await run.save_settings(final_name, plan, timezone)
    await chat.bot.connector.wait_for_text("created; the first sync is running now", since=mark)
    found = [c for c in await chat.bot.store.list_connections(chat.key) if c.name == final_name]
    assert found, "the setup said it created the connection, but the store has none"
    return found[0]
