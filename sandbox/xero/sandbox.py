"""`XeroSandbox`: the state of the emulated Xero, its control methods, and the aiohttp app serving it.

One app serves all of Xero's hosts (login, identity, api) so one base URL configures the client. The
middleware records every request outside the control API (`/_sandbox/xero/...`) and applies the fault
switches before the real handler runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web

from sandbox.clock import Clock
from sandbox.xero import wire
from sandbox.xero.accounting import API_PREFIX, AccountingApi, account_order
from sandbox.xero.control import add_control_routes
from sandbox.xero.faults import Faults, failure_response
from sandbox.xero.identity import Identity
from sandbox.xero.identity_records import App
from sandbox.xero.identity_routes import IdentityRoutes
from sandbox.xero.limits import RateLimiter
from sandbox.xero.orgs import Org, UnknownObject, stable_id
from sandbox.xero.seed import DEMO_EMAIL, DEMO_USERS, USER_TENANTS, build_org, seed_orgs

CLIENT_ID = "sandbox-xero-client"
CLIENT_SECRET = "sandbox-xero-secret"
APP_NAME = "Dynamics 365 Connector (sandbox)"
# An "Auth Code with PKCE" app: no secret, so the authorize request must carry a code_challenge.
PKCE_CLIENT_ID = "sandbox-xero-pkce-client"
PKCE_APP_NAME = "Dynamics 365 Connector (sandbox, PKCE)"
DEFAULT_SCOPE = "openid profile email offline_access accounting.settings.read"
CONTROL_PREFIX = "/_sandbox/xero"
_SECRET_FORM_FIELDS = {"client_secret", "code", "refresh_token", "code_verifier", "token", "password",
                       "access_token", "id_token"}
_SECRET_HEADERS = {"authorization", "cookie", "proxy-authorization"}


@dataclass
class RecordedRequest:
    """A request as the sandbox saw it, secrets redacted; `status` 0 means the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    tenant: str | None
    form: dict[str, str] = field(default_factory=dict)
    time: float = 0.0
    status: int = 0


def _redact_header(name: str, value: str) -> str:
    if name.lower() not in _SECRET_HEADERS:
        return value
    scheme = value.split(" ", 1)[0] if " " in value else ""
    return f"{scheme} <redacted>".strip()


class XeroSandbox:
    def __init__(self, clock: Clock, *, daily_limit: int = 5000, minute_limit: int = 60,
                 concurrent_limit: int = 5, app_minute_limit: int = 10000) -> None:
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self.faults = Faults()
        self.limiter = RateLimiter(clock, daily=daily_limit, minute=minute_limit, concurrent=concurrent_limit,
                                   app_minute=app_minute_limit)
        self.orgs: dict[str, Org] = seed_orgs()
        self.user_tenants: dict[str, list[str]] = {k: list(v) for k, v in USER_TENANTS.items()}
        apps = [App(CLIENT_ID, CLIENT_SECRET, APP_NAME), App(PKCE_CLIENT_ID, None, PKCE_APP_NAME)]
        self.identity = Identity(clock, apps, {u.email: u for u in DEMO_USERS}, self.user_tenants)
        self.app = self._build_app(apps)

    def _build_app(self, apps: list[App]) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=1024 * 1024)
        IdentityRoutes(identity=self.identity, orgs=lambda: self.orgs, limiter=self.limiter,
                       app_names={a.client_id: a.name for a in apps}).add_to(app)
        api = AccountingApi(clock=self.clock, identity=self.identity, orgs=lambda: self.orgs,
                            limiter=self.limiter, latency=lambda: self.faults.latency, provider_name=APP_NAME)
        app.router.add_route("*", API_PREFIX + "{tail:.*}", api.handle)
        add_control_routes(app, self, CONTROL_PREFIX)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)  # type: ignore[no-any-return]
        record = RecordedRequest(
            request.method, request.path, dict(request.query),
            {k: _redact_header(k, v) for k, v in request.headers.items()},
            request.headers.get("xero-tenant-id"), time=self.clock.time())
        if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            record.form = {k: "<redacted>" if k in _SECRET_FORM_FIELDS else str(v) for k, v in form.items()}
        self.requests.append(record)
        rule = self.faults.take(request.path)
        if rule is not None and rule.status == 0:
            await request.read()
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection close with no response
            return web.Response(status=500)
        if rule is not None:
            response: web.StreamResponse = failure_response(rule, request.path)
        else:
            if self.faults.latency > 0 and not request.path.startswith(API_PREFIX):
                await asyncio.sleep(self.faults.latency)
            response = await handler(request)
        record.status = response.status
        return response

    # App registration and identity

    def register_redirect_uri(self, uri: str, *, client_id: str = CLIENT_ID) -> None:
        """Exact-match redirect URI for the app (https, or http on localhost; at most 50)."""
        self.identity.register_redirect_uri(uri, client_id)

    def expire_access_tokens(self) -> None:
        self.identity.expire_access_tokens()

    def revoke_user_tokens(self, email: str) -> None:
        """As if the user's tokens were revoked at Xero: refresh gives invalid_grant, API calls 401."""
        self.identity.revoke_user(email.lower())

    def issue_tokens(self, email: str, *, tenant_ids: Sequence[str] | None = None, scope: str = DEFAULT_SCOPE,
                     client_id: str = CLIENT_ID) -> dict[str, Any]:
        """Consent plus code exchange without the browser: the token response, connections made."""
        email = email.lower()
        tenants = list(tenant_ids) if tenant_ids is not None else list(self.user_tenants.get(email, []))
        self._check_user_tenants(email, tenants)
        return self.identity.issue(email, client_id, tenants, tuple(scope.split()))

    def disconnect(self, email: str, tenant_id: str, *, client_id: str = CLIENT_ID) -> None:
        """As if the user disconnected the app from that organisation in Xero (API calls then get 403)."""
        self.identity.disconnect(email.lower(), tenant_id, client_id)

    def tenants_for(self, email: str) -> list[str]:
        """The organisations the user can connect (not only the connected ones)."""
        return list(self.user_tenants.get(email.lower(), []))

    def connections(self, email: str, *, client_id: str = CLIENT_ID) -> list[dict[str, str]]:
        return [{"id": c.id, "tenantId": c.tenant_id, "authEventId": c.auth_event_id}
                for c in self.identity.active_connections(email.lower(), client_id)]

    def _check_user_tenants(self, email: str, tenant_ids: Sequence[str]) -> None:
        allowed = self.user_tenants.get(email)
        if allowed is None:
            raise UnknownObject(f"no user {email}")
        missing = [t for t in tenant_ids if t not in allowed]
        if missing:
            raise ValueError(f"{email} has no access to {missing}")

    # Organisations

    def org(self, tenant_id: str) -> Org:
        try:
            return self.orgs[tenant_id]
        except KeyError:
            raise UnknownObject(f"no tenant {tenant_id}") from None

    def generate_org(self, name: str, accounts: int = 5000, country: str = "NZ", *,
                     users: Sequence[str] = (DEMO_EMAIL,)) -> str:
        """A large organisation for benchmarks: the region's chart padded to `accounts` accounts."""
        tenant_id = stable_id("generated", name)
        if tenant_id in self.orgs:
            raise ValueError(f"an organisation named {name!r} already exists")
        for email in users:
            if email.lower() not in self.user_tenants:
                raise UnknownObject(f"no user {email}")
        self.orgs[tenant_id] = build_org(tenant_id, name, country.upper(), accounts=accounts)
        for email in users:
            self.user_tenants[email.lower()].append(tenant_id)
        return tenant_id

    def add_account(self, tenant_id: str, **fields: Any) -> str:
        return self.org(tenant_id).add_account(fields, now=self.clock.now())

    def update_account(self, tenant_id: str, account_id: str, *, touch: bool = True, **fields: Any) -> None:
        self.org(tenant_id).update_account(account_id, fields, now=self.clock.now(), touch=touch)

    def rename_account(self, tenant_id: str, account_id: str, name: str, *, touch: bool = True) -> None:
        self.update_account(tenant_id, account_id, touch=touch, Name=name)

    def archive_account(self, tenant_id: str, account_id: str) -> None:
        self.update_account(tenant_id, account_id, Status="ARCHIVED")

    def delete_account(self, tenant_id: str, account_id: str) -> None:
        """Deleted accounts vanish from every read (a full pull is how a client notices)."""
        self.org(tenant_id).delete_account(account_id)

    def add_tax_rate(self, tenant_id: str, **fields: Any) -> str:
        """Returns the TaxType (TAX00n unless given)."""
        return self.org(tenant_id).add_tax_rate(fields)

    def update_tax_rate(self, tenant_id: str, tax_type: str, **fields: Any) -> None:
        self.org(tenant_id).update_tax_rate(tax_type, fields)

    def add_branding_theme(self, tenant_id: str, **fields: Any) -> str:
        return self.org(tenant_id).add_theme(fields, now=self.clock.now())

    def update_branding_theme(self, tenant_id: str, theme_id: str, **fields: Any) -> None:
        self.org(tenant_id).update_theme(theme_id, fields)

    def delete_branding_theme(self, tenant_id: str, theme_id: str) -> None:
        self.org(tenant_id).delete_theme(theme_id)

    # Tracking categories (sandbox/xero/tracking.py has the rules and the limits)

    def add_tracking_category(self, tenant_id: str, **fields: Any) -> str:
        """`Name`, optional `Status` and `Options` ([{"Name", "Status"?}]); returns the TrackingCategoryID."""
        return self.org(tenant_id).tracking.add_category(fields)

    def update_tracking_category(self, tenant_id: str, category_id: str, **fields: Any) -> None:
        """Rename (`Name`) or change `Status` (ARCHIVED, or ACTIVE again within the limit of two)."""
        self.org(tenant_id).tracking.update_category(category_id, fields)

    def rename_tracking_category(self, tenant_id: str, category_id: str, name: str) -> None:
        self.update_tracking_category(tenant_id, category_id, Name=name)

    def archive_tracking_category(self, tenant_id: str, category_id: str) -> None:
        self.update_tracking_category(tenant_id, category_id, Status="ARCHIVED")

    def delete_tracking_category(self, tenant_id: str, category_id: str) -> None:
        """Gone from every read, with its options."""
        self.org(tenant_id).tracking.delete_category(category_id)

    def add_tracking_option(self, tenant_id: str, category_id: str, **fields: Any) -> str:
        return self.org(tenant_id).tracking.add_option(category_id, fields)

    def update_tracking_option(self, tenant_id: str, category_id: str, option_id: str, **fields: Any) -> None:
        self.org(tenant_id).tracking.update_option(category_id, option_id, fields)

    def rename_tracking_option(self, tenant_id: str, category_id: str, option_id: str, name: str) -> None:
        self.update_tracking_option(tenant_id, category_id, option_id, Name=name)

    def archive_tracking_option(self, tenant_id: str, category_id: str, option_id: str) -> None:
        self.update_tracking_option(tenant_id, category_id, option_id, Status="ARCHIVED")

    def delete_tracking_option(self, tenant_id: str, category_id: str, option_id: str) -> None:
        self.org(tenant_id).tracking.delete_option(category_id, option_id)

    def tracking_categories(self, tenant_id: str, *, include_archived: bool = True) -> list[dict[str, Any]]:
        return self._parsed(self.org(tenant_id).tracking.read(include_archived=include_archived))

    # What the API would return (parsed as a client would, decimals as Decimal)

    @staticmethod
    def _parsed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(json.loads(wire.dumps(records), parse_float=Decimal))

    def accounts(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._parsed(sorted(self.org(tenant_id).accounts.values(), key=account_order))

    def tax_rates(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._parsed(sorted(self.org(tenant_id).tax_rates.values(), key=lambda r: r["Name"].casefold()))

    def branding_themes(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._parsed(sorted(self.org(tenant_id).themes.values(), key=lambda t: (t["SortOrder"], t["Name"])))

    def organisation(self, tenant_id: str) -> dict[str, Any]:
        return self._parsed([self.org(tenant_id).organisation])[0]

    # Faults

    def fail_next(self, n: int, status: int, *, retry_after: int | None = None, path_prefix: str | None = None,
                  problem: str = "minute") -> None:
        """Answer the next n matching requests with `status` (429 adds X-Rate-Limit-Problem: `problem`)."""
        self.faults.fail_next(n, status, retry_after=retry_after, path_prefix=path_prefix, problem=problem)

    def drop_next(self, n: int, *, path_prefix: str | None = None) -> None:
        """Close the connection after reading the next n matching requests, without answering."""
        self.faults.drop_next(n, path_prefix=path_prefix)

    def set_latency(self, seconds: float) -> None:
        """Real (wall-clock) delay before each answer; Accounting calls hold their concurrency slot meanwhile."""
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        self.faults.latency = seconds

    def reset(self) -> None:
        """Back to the seed: organisations, users' tenants, tokens, connections, faults, limits, requests.
        Registered redirect URIs stay (they are the app's configuration)."""
        self.orgs = seed_orgs()
        self.user_tenants.clear()
        self.user_tenants.update({k: list(v) for k, v in USER_TENANTS.items()})
        self.identity.reset()
        self.faults.reset()
        self.limiter.reset()
        self.requests.clear()
