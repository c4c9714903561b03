"""The Teams side assembled: adapter, notifier, sync runtime, scheduler, setup, commands, routes.

`open_bot_app(settings, store)` is what `app.py`, the scenario tests and the benchmarks all use, so the
wiring they exercise is the wiring that ships.
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from botbuilder.core import ConversationState
from botbuilder.integration.aiohttp import CloudAdapter

from bot.config import Settings
from bot.dialogs import SetupDeps, SetupFeature, SetupOptions
from bot.storage.base import Store
from bot.sync.discovery import DiscoveryClient
from bot.sync.keepalive import KeeperPolicy, SignInKeeper
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

log = logging.getLogger(__name__)


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

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(
                "/api/messages",
                timed_turns(
                    messages_handler(
                        self.adapter, self.bot, loopback_service_urls_only=self.settings.anonymous_bot
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
        await self.watcher.start()
        # In the bot process whether or not it runs syncs: its notifier is the one that reaches Teams.
        if self.settings.signin_keeper_enabled:
            await self.keeper.start()

    async def stop(self) -> None:
        """Stop taking work, finish what is under way, release leases."""
        await self.keeper.stop()
        await self.watcher.stop()
        await self.ops.close()
        await self.scheduler.stop()
        # Notifications are delivered in the background: let the queued ones go out.
        await self.notifier.sender.close()
        # The connector clients' shared HTTP session, once nothing more will be sent.
        await close_adapter(self.adapter)


@asynccontextmanager
async def open_bot_app(settings: Settings, store: Store) -> AsyncIterator[BotApp]:
    adapter = build_adapter(settings)
    sender = ProactiveSender(adapter, store, settings.microsoft_app_id)
    notifier = TeamsNotifier(sender, RunCardBook(store), connections=store)
    async with open_sync_runtime(settings, store, notifier) as runtime:
        scheduler = Scheduler(
            store,
            runtime.engine,
            owner=f"bot:{socket.gethostname()}:{uuid.uuid4().hex[:8]}",
            poll_seconds=settings.scheduler_poll_seconds,
            lease_seconds=settings.run_lease_seconds,
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
            SetupOptions(
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
        # Setup registers after ops: its `connect` and `cancel` win, and it routes the shared settings card.
        setup.register(router, connection_settings=ops.on_settings_card)

        bot = ConnectorBot(
            router,
            store,
            ConversationState(StoreStorage(store)),
            Welcomer(store),
            verify_state=setup.verify_state,
        )
        watcher = RunWatcher(store, notifier)
        keeper = SignInKeeper(
            store,
            runtime.xero_tokens,
            runtime.dynamics_auth,
            notifier,
            discovery_url=settings.dataverse_discovery_url,
            policy=KeeperPolicy.from_settings(settings),
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
        )
