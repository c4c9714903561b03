"""What the setup needs from the rest of the product, passed in once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import httpx
from botbuilder.integration.aiohttp import CloudAdapter

from bot.config import Settings
from bot.crypto import TokenCipher
from bot.dialogs.oauth_state import STATE_TTL_SECONDS
from bot.storage.base import Store
from bot.sync.discovery import DiscoveryClient
from bot.sync.dynamics_auth import DynamicsAuth
from bot.sync.xero import XeroClient
from bot.sync.xero_auth import XeroOAuth
from bot.sync.xero_tokens import XeroTokenProvider


class FirstRunScheduler(Protocol):
    """The sync service's door for a new (or just reconnected) connection: run it now."""

    async def schedule_first_run(self, connection_id: str) -> None: ...


@dataclass(frozen=True)
class SetupDeps:
    settings: Settings
    store: Store
    cipher: TokenCipher
    adapter: CloudAdapter
    http: httpx.AsyncClient  # for the Dataverse client of the chosen environment
    xero_oauth: XeroOAuth
    xero_tokens: XeroTokenProvider
    xero: XeroClient
    dynamics_auth: DynamicsAuth
    discovery: DiscoveryClient
    scheduler: FirstRunScheduler


@dataclass(frozen=True)
class SetupOptions:
    # Links, provider states, pending sign-ins and codes all live this long.
    state_ttl_seconds: float = STATE_TTL_SECONDS
    # A setup nobody touched for this long may be replaced by a new one in the same conversation.
    idle_timeout: timedelta = timedelta(hours=1)
    # Where the card sends people to get our solution (no button when empty).
    appsource_url: str = ""
    solution_zip_url: str = ""
    # The solution this bot ships ("" = the one bot.solution builds from bot.sync.tables) and how the
    # card's "Install it for me" follows an import (poll interval, and when to give up following it).
    solution_version: str = ""
    install_poll_seconds: float = 2.0
    install_timeout_seconds: float = 900.0
    # Accept a Dynamics sign-in by the Teams user's own Entra account without a code (same tenant and
    # object id prove the browser user is them).
    trust_same_entra_account: bool = True
