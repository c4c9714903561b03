"""The Teams side assembled: adapter, notifier, sync runtime, scheduler, setup, commands, routes.

`open_bot_app(settings, store)` is the only place the bot is wired: `app.py` calls it as it is, and the
scenario tests and the benchmarks call it with `AppSeams` (their clock, a recording notifier, faster rate
windows, shorter setup timings), so the wiring they exercise is the wiring that ships.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from botbuilder.core import ConversationState
from botbuilder.integration.aiohttp import CloudAdapter

from bot.config import Settings
from bot.dialogs import SetupDeps, SetupFeature, SetupOptions
from bot.storage.base import Store
from bot.sync.discovery import DiscoveryClient
from bot.sync.keepalive import KeeperPolicy, SignInKeeper
from bot.sync.ports import Clock, Notifier
from bot.sync.ratelimit import RateWindow
from bot.sync.runtime import SyncRuntime, open_sync_runtime
from bot.sync.scheduler import Scheduler
from bot.sync.service import SyncService
from bot.teams.adapter import build_adapter, close_adapter
from bot.teams.commands import OpsCommands
from bot.teams.disconnect import Disconnector
from bot.teams.endpoint import messages_handler
from bot.teams.handler import ConnectorBot
from bot.teams.notifier import TeamsNotifier
from bot.teams.proactive import ProactiveSender
from bot.teams.router import Router
from bot.teams.run_watcher import RunWatcher
from bot.teams.runcards import RunCardBook
from bot.teams.state import StoreStorage
from bot.teams.welcome import Welcomer
from bot.web.health import health_routes
from bot.web.metrics import metrics_routes, timed_turns
from bot.web.pages import legal_routes
from bot.web.solution import download_url, solution_routes
from cards.failure_words import connector_outcome_words

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppSeams:
    """What a test or a benchmark may set in the shipped wiring; `app.py` sets none of it.

    Unset (None) means the part's own default, as in production."""

    # The time the sync engine, the scheduler and the sign-in keeper read (the sandboxes' clock in tests).
    clock: Clock | None = None
    # What the sync engine reports to, given the Teams notifier (a relay to a recorder in tests).
    engine_notifier: Callable[[TeamsNotifier], Notifier] | None = None
    # The proactive sender's rate windows and first back-off in front of the Bot Connector.
    proactive_windows: tuple[RateWindow, ...] | None = None
    proactive_base_wait: float | None = None
    watcher_poll_seconds: float | None = None
    watcher_grace_seconds: float | None = None
    # False: `start()` leaves the run watcher stopped (a test drives `scan_once()` itself).
    start_watcher: bool = True
    # The setup's timings and links (install poll interval, state TTL, idle timeout); default from settings.
    setup: SetupOptions | None = None
    # Anonymous mode refuses activities whose serviceUrl is not this machine; a test that plays Teams' own
    # channel (https://smba.trafficmanager.net/...) to a bot without an app id turns that off.
    any_service_url: bool = False
    # How long `stop()` lets runs, commands and queued notifications finish; None: each part's default.
    stop_grace_seconds: float | None = None


def _given(**values: Any) -> dict[str, Any]:
    """Keyword arguments without the unset seams, so each part keeps its own defaults."""
    return {key: value for key, value in values.items() if value is not None}


@dataclass
class BotApp:
    settings: Settings
    store: Store
    runtime: SyncRuntime
    adapter: CloudAdapter
    router: Router
    bot: ConnectorBot
    notifier: TeamsNotifier
    scheduler: Scheduler
    sync: SyncService
    setup: SetupFeature
    ops: OpsCommands
    watcher: RunWatcher
    keeper: SignInKeeper
    disconnector: Disconnector
    seams: AppSeams = field(default_factory=AppSeams)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(
                "/api/messages",
                timed_turns(
                    messages_handler(
                        self.adapter,
                        self.bot,
                        loopback_service_urls_only=self.settings.anonymous_bot and not self.seams.any_service_url,
                    )
                ),
            ),
            *health_routes(self.store),
            *(metrics_routes() if self.settings.metrics_enabled else []),
            *solution_routes(),
            *self.setup.routes(),
            *legal_routes(self.settings),
        ]

    async def start(self) -> None:
        if self.settings.run_scheduler:
            await self.scheduler.start()
        if self.seams.start_watcher:
            await self.watcher.start()
        # In the bot process whether or not it runs syncs: its notifier is the one that reaches Teams.
        if self.settings.signin_keeper_enabled:
            await self.keeper.start()

    async def stop(self) -> None:
        """Stop taking work, finish what is under way, release leases."""
        await self.keeper.stop()
        await self.watcher.stop()
        grace = _given(grace=self.seams.stop_grace_seconds)
        await self.ops.close(**grace)
        await self.scheduler.stop(**_given(grace_seconds=self.seams.stop_grace_seconds))
        # Notifications are delivered in the background: let the queued ones go out.
        await self.notifier.sender.close(**grace)
        # The connector clients' shared HTTP session, once nothing more will be sent.
        await close_adapter(self.adapter)


@asynccontextmanager
async def open_bot_app(
    settings: Settings, store: Store, seams: AppSeams | None = None
) -> AsyncIterator[BotApp]:
    seams = seams or AppSeams()
    adapter = build_adapter(settings)
    sender = ProactiveSender(
        adapter,
        store,
        settings.microsoft_app_id,
        **_given(windows=seams.proactive_windows, base_wait=seams.proactive_base_wait),
    )
    notifier = TeamsNotifier(sender, RunCardBook(store), connections=store)
    reports_to = seams.engine_notifier(notifier) if seams.engine_notifier is not None else notifier
    async with open_sync_runtime(
        settings, store, reports_to, clock=seams.clock, outcome_words=connector_outcome_words
    ) as runtime:
        scheduler = Scheduler(
            store,
            runtime.engine,
            owner=f"bot:{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
            poll_seconds=settings.scheduler_poll_seconds,
            lease_seconds=settings.run_lease_seconds,
            clock=seams.clock,
        )
        sync = SyncService(store, scheduler, dataverse_factory=runtime.dataverse_factory)
        setup = SetupFeature(
            SetupDeps(
                settings=settings,
                store=store,
                cipher=runtime.cipher,
                adapter=adapter,
                http=runtime.http,
                xero_oauth=runtime.xero_oauth,
                xero_tokens=runtime.xero_tokens,
                xero=runtime.xero,
                dynamics_auth=runtime.dynamics_auth,
                discovery=DiscoveryClient(settings, runtime.http),
                scheduler=sync,
            ),
            seams.setup
            or SetupOptions(
                appsource_url=settings.solution_appsource_url,
                solution_zip_url=download_url(settings.public_base_url),
            ),
        )
        disconnector = Disconnector(
            store, runtime.xero_oauth, runtime.xero_tokens, runtime.dynamics_auth, runtime.dataverse_factory
        )
        ops = OpsCommands(
            store,
            sync,
            notifier,
            disconnector,
            setup,
            dataverse_factory=runtime.dataverse_factory,
            solution_download_url=download_url(settings.public_base_url),
            xero=runtime.xero,
        )
        router = Router()
        ops.register(router)
        # Each command and verb has one owner (the router refuses a second): setup owns `connect`, `cancel`
        # and the shared settings card, which it hands to ops when the card names a connection.
        setup.register(router, connection_settings=ops.on_settings_card)

        bot = ConnectorBot(
            router,
            store,
            ConversationState(StoreStorage(store)),
            Welcomer(store),
            verify_state=setup.verify_state,
        )
        watcher = RunWatcher(
            store,
            notifier,
            **_given(poll_seconds=seams.watcher_poll_seconds, grace_seconds=seams.watcher_grace_seconds),
        )
        keeper = SignInKeeper(
            store,
            runtime.xero_tokens,
            runtime.dynamics_auth,
            notifier,
            discovery_url=settings.dataverse_discovery_url,
            policy=KeeperPolicy.from_settings(settings),
            clock=seams.clock,
        )
        yield BotApp(
            settings=settings,
            store=store,
            runtime=runtime,
            adapter=adapter,
            router=router,
            bot=bot,
            notifier=notifier,
            scheduler=scheduler,
            sync=sync,
            setup=setup,
            ops=ops,
            watcher=watcher,
            keeper=keeper,
            disconnector=disconnector,
            seams=seams,
        )
