"""Scenario-test harness: the shipped bot, a fake Bot Connector, Teams users, and a browser.

    async with open_bot(tmp_path) as bot:                       # sandboxes + store + bot on ephemeral ports
        chat = bot.personal(ALICE)                               # Alice's 1:1 chat with the bot
        await chat.say("sync connect")
        card = await bot.connector.wait_for_card("Connect to Xero")
        page = await bot.browser().xero(card.action_url("Connect to Xero"))   # login + consent + callback
        await chat.say(page.code)                                # the code, typed back as Alice

The bot is built by `bot.teams.app.open_bot_app`, the function `app.py` calls: the same adapter (anonymous
mode), router, features, commands, notifier, scheduler and routes, in the same order. The harness only
passes seams (`AppSeams`): the sandboxes' clock for the sync engine, scheduler and keeper; a relay in
front of the engine's notifier (`bot.notifier`, a recorder unless a feature points it at the Teams
notifier); fast proactive rate windows; short setup timings; the run watcher left for the tests to drive.
`use_app=True` passes no seams at all: production timings and windows, the system clock, the Teams
notifier straight behind the engine (`bot.notifier` then only mirrors it).

What is real besides the bot: the sandboxes (Xero, Entra ID over TLS, Dataverse) and the store (SQLite, or
Redis with `redis_url`). Activities go in over HTTP exactly as the Teams channel posts them (chats.py);
everything the bot sends reaches `FakeConnector` (connector.py), which answers like the Bot Connector and
records it all. The setup is driven as a person would drive it by setup_driver.py.

Features plug in with `install=[fn]`: each `fn(bot)` runs once the app is built and before the server
starts; it may register commands/verbs on `bot.router`, add aiohttp routes to `bot.extra_routes`, or point
`bot.notifier.target` elsewhere. An installer with a `configure(seams) -> seams` method changes the seams
first. `bot.restart()` builds a new bot (new adapter, router, features, clients, store handle) on the
same store, port and sandboxes: what survives it was in the store. `run_scheduler=True` starts the sync
scheduler loop, so scheduled runs really run.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter

from bot.config import Settings
from bot.dialogs import SetupFeature, SetupOptions
from bot.solution import build_zip
from bot.storage.base import Connection, RunRecord, Store
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore
from bot.sync.ports import AttentionDetail, AttentionReason, Notifier
from bot.sync.ratelimit import RateWindow
from bot.sync.runtime import SyncRuntime
from bot.sync.scheduler import Scheduler
from bot.sync.service import SyncService
from bot.teams.app import AppSeams, BotApp, open_bot_app
from bot.teams.handler import ConnectorBot
from bot.teams.router import Router
from bot.web.solution import download_url
from sandbox.runner import Sandboxes
from tests.conftest import free_port
from tests.integration.harness import Harness, RecordingNotifier, sandbox_settings
from tests.scenario.chats import ALICE, BOB, BOT_ID, BOT_NAME, TENANT_ID, Chat, TeamsUser
from tests.scenario.connector import FakeConnector, Outbound
from tests.scenario.setup_driver import SetupRun, connect_via_chat, start_setup
from tests.support.signin_pages import Browser, Page

__all__ = [
    "ALICE",
    "BOB",
    "BOT_ID",
    "BOT_NAME",
    "TENANT_ID",
    "TEST_WINDOWS",
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

# Fast enough for tests, still a real limiter in front of the connector.
TEST_WINDOWS = (RateWindow(50, 1.0),)
APPSOURCE_URL = "https://appsource.microsoft.com/product/dynamics-365/xerodynamicsconnector"


Installer = Callable[["BotHarness"], Awaitable[None] | None]


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

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: AttentionDetail) -> None:
        await self.target.needs_attention(connection, reason, detail)


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
        redis_url: str,
        use_app: bool = False,
    ) -> None:
        self.sandboxes = sandboxes
        self.connector = connector
        self.settings = settings
        self.data_dir = data_dir
        self.options = options
        self._install = list(install)
        self._redis_url = redis_url
        self._use_app = use_app
        self.url = settings.public_base_url
        self.http = httpx.AsyncClient(timeout=30)
        self._stack: AsyncExitStack | None = None
        self._browsers: list[Browser] = []
        self.restarts = 0

    # The pieces, rebuilt by every start(): what `open_bot_app` built, read off the app.
    app: BotApp
    store: Store
    runtime: SyncRuntime
    notifier: RelayNotifier  # what the sync engine reports to (with use_app: a mirror of the app's notifier)
    adapter: CloudAdapter
    scheduler: Scheduler
    sync: SyncService
    router: Router
    setup: SetupFeature
    bot: ConnectorBot
    harness: Harness  # the integration harness over the same pieces (connect(), rows(), run())
    extra_routes: list[web.RouteDef]

    def seams(self) -> AppSeams:
        """What the tests change in the shipped wiring (see the module docstring)."""
        if self._use_app:
            return AppSeams()
        seams = AppSeams(
            clock=self.sandboxes.clock,
            engine_notifier=lambda _teams: self.notifier,
            proactive_windows=TEST_WINDOWS,
            proactive_base_wait=0.05,
            watcher_poll_seconds=0.1,
            watcher_grace_seconds=0.3,
            start_watcher=False,
            setup=self.options,
            # The sign-in popup tests post as real Teams does (its serviceUrl) to this app-id-less bot.
            any_service_url=True,
            stop_grace_seconds=5.0,
        )
        for install in self._install:
            configure = getattr(install, "configure", None)
            if configure is not None:
                seams = configure(seams)
        return seams

    async def start(self) -> None:
        stack = AsyncExitStack()
        self._stack = stack
        try:
            await self._start(stack)
        except BaseException:
            self._stack = None
            await stack.aclose()
            raise

    async def _start(self, stack: AsyncExitStack) -> None:
        self.store = await self._open_store()
        stack.push_async_callback(self.store.close)
        self.notifier = RelayNotifier()
        app = await stack.enter_async_context(open_bot_app(self.settings, self.store, self.seams()))
        self.app = app
        if self._use_app:
            self.notifier = RelayNotifier(target=app.notifier)
        self.runtime, self.adapter, self.router, self.setup = app.runtime, app.adapter, app.router, app.setup
        self.bot, self.scheduler, self.sync = app.bot, app.scheduler, app.sync
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
    sandboxes: Sandboxes,
    public_base_url: str,
    data_dir: Path,
    redis_url: str = "",
    *,
    run_scheduler: bool = False,
    keep_signins: bool = False,
) -> Settings:
    return sandbox_settings(
        sandboxes,
        public_base_url,
        data_dir,
        redis_url,
        scheduler_poll_seconds=0.1,
        run_lease_seconds=5.0,
        run_scheduler=run_scheduler,
        # The sign-in keeper runs with the shipped wiring only: the other tests build their own on the
        # sandboxes' clock (test_signin_lapse.py), and one in the background would answer for them.
        signin_keeper_enabled=keep_signins,
    )


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

    `use_app=True` runs the shipped composition without the test seams (system clock, production rate
    windows and timings, the run watcher and sign-in keeper started)."""
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
        settings = make_settings(
            sandboxes, url, data_dir, redis_url, run_scheduler=run_scheduler, keep_signins=use_app
        )
        bot = BotHarness(
            sandboxes,
            connector,
            settings,
            data_dir,
            # As production wires them (bot.teams.app), with an AppSource listing configured.
            options=options
            or SetupOptions(solution_zip_url=download_url(url), appsource_url=APPSOURCE_URL, install_poll_seconds=0.05),
            install=install,
            redis_url=redis_url,
            use_app=use_app,
        )
        stack.push_async_callback(bot.close)
        await bot.start()
        yield bot
