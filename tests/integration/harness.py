"""A reusable integration harness: the three sandboxes, Settings pointing at them, a store, the real
clients, and connections made ready the way a user makes them (by signing in on the sandboxes' pages).

    async with open_harness(tmp_path) as h:              # SQLite store; open_harness(tmp_path, redis_url=...)
        connection = await h.connect()                    # NZ org <-> Alice's first environment
        run = await h.run(connection.id)                  # one SyncEngine run
        rows = await h.rows(CHART_OF_ACCOUNTS, connection) # what landed in Dynamics, read back by the real client

What `connect()` does, step by step (no shortcut around the product's own code):
  1. Xero: `XeroOAuth.authorize_url` -> the sandbox's login page -> consent page (one organisation ticked)
     -> the redirect's code -> `XeroOAuth.exchange_code` -> `XeroTokenProvider.save` (encrypted in the store)
     -> `XeroOAuth.connections` for the connection id.
  2. Dynamics: `DynamicsAuth.start_flow` -> the Entra sandbox's sign-in (and consent) page -> the
     redirect's query -> `DynamicsAuth.complete_flow` (MSAL token cache, encrypted in the store)
     -> Global Discovery for the environments.
  3. The Connection is created in the store, then the Connector and Settings rows are written to
     Dynamics (`bot.sync.records`) and their ids saved on the connection.

Attributes worth knowing: `h.xero` / `h.entra` / `h.dataverse` (the sandboxes, with their request logs and
fault switches), `h.clock` (the sandboxes' clock; the engine uses it too, so `h.clock.advance(...)` moves
token expiry and the full-pass timer together), `h.store`, `h.runtime` (engine, clients, token
providers), `h.notifier` (records every notification; `fail=True` makes every call raise),
`h.settings_env()` (the environment a `python -m bot.worker` subprocess needs).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.crypto import TokenCipher
from bot.solution import build_zip
from bot.storage.base import Connection, RunRecord, RunTrigger, Store
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore
from bot.sync.discovery import DiscoveryClient, Environment
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.sync.records import upsert_connector_record, upsert_settings_record
from bot.sync.runtime import SyncRuntime, open_sync_runtime
from bot.sync.tables import CONNECTOR, SYNCED_TABLES, Table
from cards.failure_words import connector_outcome_words
from sandbox.clock import Clock
from sandbox.entra import ALICE, User
from sandbox.runner import Sandboxes
from sandbox.xero.seed import DEMO_EMAIL, DEMO_PASSWORD, NZ_TENANT_ID
from tests.support.signin_pages import Browser, Page

PUBLIC_BASE_URL = "http://localhost:3978"


class SignInFailed(AssertionError):
    """A sandbox sign-in page did not lead where it should (the page's text is in the message)."""


@dataclass
class Notification:
    kind: str  # run_started, run_progress, run_finished, needs_attention
    connection_id: str
    run: RunRecord | None = None
    stage: str = ""
    reason: AttentionReason | None = None
    detail: AttentionDetail | None = None


@dataclass
class RecordingNotifier:
    """A Notifier that remembers every call. With `fail=True` every call raises (the run must not care)."""

    fail: bool = False
    calls: list[Notification] = field(default_factory=list)

    def _record(self, note: Notification) -> None:
        self.calls.append(note)
        if self.fail:
            raise RuntimeError(f"notifier down ({note.kind})")

    async def run_started(self, connection: Connection, run: RunRecord) -> None:
        self._record(Notification("run_started", connection.id, run))

    async def run_progress(self, connection: Connection, run: RunRecord, stage: str) -> None:
        self._record(Notification("run_progress", connection.id, run, stage=stage))

    async def run_finished(self, connection: Connection, run: RunRecord) -> None:
        self._record(Notification("run_finished", connection.id, run))

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: AttentionDetail) -> None:
        self._record(Notification("needs_attention", connection.id, reason=reason, detail=detail))

    def kinds(self) -> list[str]:
        return [c.kind for c in self.calls]

    def attention(self) -> list[AttentionReason]:
        return [c.reason for c in self.calls if c.reason is not None]


def _callback_query(page: Page, redirect_uri: str) -> dict[str, str]:
    """The query of the redirect to our callback (held by the browser, since no bot serves it here)."""
    if not page.redirected or not page.url.startswith(redirect_uri):
        raise SignInFailed(
            f"expected a redirect to {redirect_uri}, got {page.status} at {page.url}: {page.text[:400]}"
        )
    return page.query


@dataclass
class Harness:
    sandboxes: Sandboxes
    settings: Settings
    store: Store
    runtime: SyncRuntime
    notifier: RecordingNotifier
    data_dir: Path
    redis_url: str = ""

    @property
    def xero(self) -> Any:
        return self.sandboxes.xero

    @property
    def entra(self) -> Any:
        return self.sandboxes.entra

    @property
    def dataverse(self) -> Any:
        return self.sandboxes.dataverse

    @property
    def clock(self) -> Clock:
        return self.sandboxes.clock

    def settings_env(self) -> dict[str, str]:
        """Environment variables for a subprocess (the worker) that uses the same sandboxes and store."""
        env = {
            **self.sandboxes.settings_env(),
            "DATA_DIR": str(self.data_dir),
            "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
            "TOKEN_ENCRYPTION_KEYS": ",".join(self.settings.token_encryption_keys),
            "SCHEDULER_POLL_SECONDS": str(self.settings.scheduler_poll_seconds),
            "RUN_LEASE_SECONDS": str(self.settings.run_lease_seconds),
        }
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        return env

    # ---- making a connection ready -----------------------------------------------------------------

    async def connect(
        self,
        *,
        tenant_id: str = NZ_TENANT_ID,
        xero_email: str = DEMO_EMAIL,
        xero_password: str = DEMO_PASSWORD,
        dynamics_user: User = ALICE,
        environment: str | None = None,
        plan: str = "premium",
        name: str = "",
        connection_id: str | None = None,
    ) -> Connection:
        """A connection as the setup conversation leaves it: tokens stored, Connector/Settings rows written."""
        cid = connection_id or f"conn-{secrets.token_hex(6)}"
        xero_connection_id = await self.sign_in_xero(cid, tenant_id, xero_email, xero_password)
        env = await self.sign_in_dynamics(cid, dynamics_user, environment)
        org = self.xero.org(tenant_id)
        connection = Connection(
            id=cid,
            name=name or org.name,
            teams_tenant_id=dynamics_user.tenant_id,
            conversation_key=f"msteams:conversation-{cid}",
            created_by_aad_id=dynamics_user.oid,
            created_by_name=dynamics_user.display_name,
            xero_tenant_id=tenant_id,
            xero_connection_id=xero_connection_id,
            xero_org_name=org.name,
            dataverse_env_id=env.id,
            dataverse_env_name=env.friendly_name,
            dataverse_env_url=env.url,
            dataverse_api_url=env.api_url,
            plan=plan,
        )
        connection = await self.store.create_connection(connection)
        dv = self.runtime.dataverse_factory(connection)
        connector_row_id = await upsert_connector_record(dv, connection)
        settings_row_id = await upsert_settings_record(dv, connection, connector_row_id)
        return await self.store.save_connection(
            connection.model_copy(
                update={
                    "dataverse_connector_row_id": connector_row_id,
                    "dataverse_settings_row_id": settings_row_id,
                }
            )
        )

    async def sign_in_xero(self, connection_id: str, tenant_id: str, email: str, password: str) -> str:
        """Drive Xero's login and consent pages; store the tokens; return the Xero connection id."""
        redirect_uri = self.settings.redirect_uri("xero")
        oauth = self.runtime.xero_oauth
        verifier, challenge = oauth.new_pkce()
        state = secrets.token_urlsafe(16)
        async with Browser(self.settings, hold_callbacks=True) as browser:
            page = await browser.xero(
                oauth.authorize_url(state, challenge, redirect_uri),
                email=email,
                password=password,
                tenants=[tenant_id],
            )
        query = _callback_query(page, redirect_uri)
        if query.get("state") != state or "code" not in query:
            raise SignInFailed(f"Xero redirect without code or with another state: {sorted(query)}")
        tokens = await oauth.exchange_code(query["code"], verifier, redirect_uri)
        await self.runtime.xero_tokens.save(connection_id, tokens)
        for xero_connection in await oauth.connections(tokens.access_token, tokens.auth_event_id or None):
            if xero_connection.tenant_id == tenant_id:
                return xero_connection.id
        raise SignInFailed(f"Xero's /connections does not list tenant {tenant_id}")

    async def sign_in_dynamics(self, connection_id: str, user: User, environment: str | None) -> Environment:
        """Drive Entra's sign-in (and consent) pages through MSAL's flow; pick an environment."""
        auth = self.runtime.dynamics_auth
        redirect_uri = self.settings.redirect_uri("dynamics")
        flow = await auth.start_flow(redirect_uri, login_hint=user.upn)
        async with Browser(self.settings, hold_callbacks=True) as browser:
            page = await browser.entra(flow["auth_uri"], upn=user.upn, password=user.password)
        query = _callback_query(page, redirect_uri)
        await auth.complete_flow(connection_id, flow, query)
        token = await auth.access_token(connection_id, self.settings.dataverse_discovery_url)
        environments = await DiscoveryClient(self.settings, self.runtime.http).environments(token)
        if not environments:
            raise SignInFailed(f"{user.upn} has no Dynamics 365 environment")
        if environment is None:
            return environments[0]
        for env in environments:
            if environment in (env.friendly_name, env.unique_name, env.id):
                return env
        raise SignInFailed(f"no environment {environment!r} among {[e.friendly_name for e in environments]}")

    # ---- running and reading -------------------------------------------------------------------------

    async def run(self, connection_id: str, trigger: str = "schedule", **kw: Any) -> RunRecord:
        return await self.runtime.engine.run(connection_id, RunTrigger(trigger), **kw)

    async def connection(self, connection_id: str) -> Connection:
        found = await self.store.get_connection(connection_id)
        assert found is not None, f"no connection {connection_id}"
        return found

    async def rows(
        self, table: Table, connection: Connection, select: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """The connection's rows of a synced table, read back from Dynamics by the real client."""
        current = await self.connection(connection.id)
        dv = self.runtime.dataverse_factory(current)
        columns = select or [c.name for c in table.columns if c.type.value not in ("lookup",)]
        return await dv.rows_for_connector(table, current.dataverse_connector_row_id, columns)

    async def connector_row(self, connection: Connection) -> dict[str, Any]:
        """The connection's Connector row in Dynamics."""
        dv = self.runtime.dataverse_factory(await self.connection(connection.id))
        columns = [c.name for c in CONNECTOR.columns]
        rows = await dv.find_rows(CONNECTOR, f"xdc_connectionid eq '{connection.id}'", columns)
        assert len(rows) == 1, f"{len(rows)} Connector rows for {connection.id}"
        return rows[0]


def sandbox_settings(
    sandboxes: Sandboxes, public_base_url: str, data_dir: Path, redis_url: str = "", **overrides: Any
) -> Settings:
    """Settings pointing at the running sandboxes, with a new token key; `overrides` sets other fields."""
    env = sandboxes.settings_env()
    return Settings(
        _env_file=None,
        sandbox=True,
        public_base_url=public_base_url,
        xero_client_id=env["XERO_CLIENT_ID"],
        xero_client_secret=env["XERO_CLIENT_SECRET"],
        xero_login_url=env["XERO_LOGIN_URL"],
        xero_identity_url=env["XERO_IDENTITY_URL"],
        xero_api_url=env["XERO_API_URL"],
        dynamics_client_id=env["DYNAMICS_CLIENT_ID"],
        dynamics_client_secret=env["DYNAMICS_CLIENT_SECRET"],
        entra_authority_host=env["ENTRA_AUTHORITY_HOST"],
        dataverse_discovery_url=env["DATAVERSE_DISCOVERY_URL"],
        ca_bundle=Path(env["CA_BUNDLE"]),
        data_dir=data_dir,
        redis_url=redis_url,
        token_encryption_keys=(TokenCipher.generate_key(),),
        **overrides,
    )


@asynccontextmanager
async def open_harness(
    tmp_path: Path,
    *,
    redis_url: str = "",
    full_pass_every: timedelta = timedelta(hours=24),
    day_limit_warning: int = 500,
    scheduler_poll_seconds: float = 0.2,
    run_lease_seconds: float = 5.0,
    clock: Clock | None = None,
) -> AsyncIterator[Harness]:
    """Start the sandboxes on ephemeral ports and everything the sync needs, pointed at them."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    # The seeded "installed" environments import the solution we ship (the sandbox cannot build it).
    sandboxes = Sandboxes(tmp_path / "sandbox", clock=clock, solution_zip=build_zip(managed=True))
    await sandboxes.start()
    try:
        sandboxes.register_bot(PUBLIC_BASE_URL)
        settings = sandbox_settings(
            sandboxes,
            PUBLIC_BASE_URL,
            data_dir,
            redis_url,
            scheduler_poll_seconds=scheduler_poll_seconds,
            run_lease_seconds=run_lease_seconds,
        )
        store: Store = (
            await RedisStore.open(redis_url)
            if redis_url
            else await SqliteStore.open(data_dir / "connector.db")
        )
        notifier = RecordingNotifier()
        try:
            async with open_sync_runtime(
                settings,
                store,
                notifier,
                clock=sandboxes.clock,
                full_pass_every=full_pass_every,
                day_limit_warning=day_limit_warning,
                outcome_words=connector_outcome_words,  # as the bot and the worker compose it
            ) as runtime:
                yield Harness(sandboxes, settings, store, runtime, notifier, data_dir, redis_url)
        finally:
            await store.close()
    finally:
        await sandboxes.stop()


def synced_writes(requests: list[Any]) -> list[Any]:
    """Write requests (anything but GET) in a Dataverse sandbox log that touch a synced table or $batch."""
    sets = {t.entity_set for t in SYNCED_TABLES} | {"$batch"}
    return [r for r in requests if r.method != "GET" and any(f"/{name}" in r.path for name in sets)]


def xero_api_calls(h: Harness) -> list[Any]:
    """The Accounting API requests in the Xero sandbox's log."""
    return [r for r in h.xero.requests if r.path.startswith("/api.xro/2.0/")]
