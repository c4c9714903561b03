"""The sync core's objects built from Settings once: HTTP pool, token providers, clients, engine.

Shared by the worker process (`python -m bot.worker`), the bot's composition root and the
integration tests, so they all run the same wiring. `open_sync_runtime` owns the HTTP pool and closes
it on exit; the store is the caller's (it outlives the runtime in the bot process).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx

from bot.config import Settings
from bot.crypto import TokenCipher, load_cipher
from bot.errors import Problem, ProviderError
from bot.storage.base import Connection, Store
from bot.sync.dataverse import DataverseClient
from bot.sync.dynamics_auth import DynamicsAuth
from bot.sync.engine import SyncEngine
from bot.sync.ports import Clock, DataverseFactory, Notifier, OutcomeWords
from bot.sync.ratelimit import TenantLimiter
from bot.sync.records import outcome_data
from bot.sync.xero import XeroClient
from bot.sync.xero_auth import XeroOAuth
from bot.sync.xero_tokens import XeroTokenProvider

HTTP_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
HTTP_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


@dataclass(frozen=True)
class SyncRuntime:
    settings: Settings
    store: Store
    cipher: TokenCipher
    http: httpx.AsyncClient
    xero_oauth: XeroOAuth
    xero_tokens: XeroTokenProvider
    limiter: TenantLimiter
    xero: XeroClient
    dynamics_auth: DynamicsAuth
    dataverse_factory: DataverseFactory
    engine: SyncEngine


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The system's trust store, plus CA_BUNDLE when set (the sandbox's local CA)."""
    context = ssl.create_default_context()
    if settings.ca_bundle is not None:
        context.load_verify_locations(cafile=str(settings.ca_bundle))
    return context


def make_dataverse_factory(http: httpx.AsyncClient, auth: DynamicsAuth) -> DataverseFactory:
    """A Dataverse client per connection, with tokens for its environment from the connection's cache."""

    def build(connection: Connection) -> DataverseClient:
        if not connection.dataverse_api_url:
            raise ProviderError(Problem.NO_ENVIRONMENT, provider="dynamics")
        audience = connection.dataverse_env_url or connection.dataverse_api_url
        # A partial (not a closure) so the client can ask for `force_refresh=True` after a 401.
        token = functools.partial(auth.access_token, connection.id, audience)
        return DataverseClient(http, connection.dataverse_api_url, token)

    return build


@asynccontextmanager
async def open_sync_runtime(
    settings: Settings,
    store: Store,
    notifier: Notifier,
    *,
    clock: Clock | None = None,
    cipher: TokenCipher | None = None,
    full_pass_every: timedelta = timedelta(hours=24),
    day_limit_warning: int = 500,
    outcome_words: OutcomeWords = outcome_data,
) -> AsyncIterator[SyncRuntime]:
    """Build everything a run needs. Raises ConfigError when tokens cannot be encrypted."""
    cipher = cipher or load_cipher(settings)
    http = httpx.AsyncClient(
        timeout=HTTP_TIMEOUT, limits=HTTP_LIMITS, verify=ssl_context(settings), follow_redirects=False
    )
    try:
        # The engine's clock (the sandbox's in tests) also dates tokens and decides their expiry and
        # idleness (the sign-in keeper's clock must agree with the dates stored with the tokens).
        if clock is not None:
            xero_oauth = XeroOAuth(settings, http, now=clock.now)
            xero_tokens = XeroTokenProvider(store, cipher, xero_oauth, now=clock.now)
        else:
            xero_oauth = XeroOAuth(settings, http)
            xero_tokens = XeroTokenProvider(store, cipher, xero_oauth)
        limiter = TenantLimiter()
        xero = XeroClient(settings, http, xero_tokens, limiter)
        dynamics_auth = DynamicsAuth(settings, store, cipher)
        factory = make_dataverse_factory(http, dynamics_auth)
        engine = SyncEngine(
            store,
            xero,
            factory,
            notifier,
            clock,
            full_pass_every=full_pass_every,
            day_limit_warning=day_limit_warning,
            outcome_words=outcome_words,
        )
        yield SyncRuntime(
            settings=settings,
            store=store,
            cipher=cipher,
            http=http,
            xero_oauth=xero_oauth,
            xero_tokens=xero_tokens,
            limiter=limiter,
            xero=xero,
            dynamics_auth=dynamics_auth,
            dataverse_factory=factory,
            engine=engine,
        )
    finally:
        await http.aclose()
