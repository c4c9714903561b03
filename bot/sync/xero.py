"""The Xero Accounting API client: Organisation, Accounts, TaxRates, BrandingThemes, TrackingCategories
for one tenant.

Every call: a bearer token from `XeroTokenProvider`, the `xero-tenant-id` header, `Accept:
application/json` (Xero answers XML otherwise), one slot of the tenant's `TenantLimiter`, bounded
retries (`bot.sync.http`). A 401 (TokenExpired) is answered by one forced refresh and one more try;
a 429 pauses the whole tenant for its Retry-After. `xero_error` (bot.sync.xero_errors, shared with
the OAuth client without an import cycle) is the one place where Xero's statuses and error bodies
become typed errors:

    401 TokenExpired / other        AuthError(code=...)            refreshed once, then raised
    401 AuthorizationUnsuccessful   AuthError(reconnect_required)  a scope is missing: consent again
    403 AuthenticationUnsuccessful  PermissionDenied(code=...)     tenant disconnected (not a token issue)
    404                             NotFound
    429                             RateLimited(retry_after, problem=X-Rate-Limit-Problem)
    5xx, timeouts, dropped          TransientProviderError         retried with backoff first
    400 and others                  ProviderError(code=Type, e.g. ValidationException)

Amounts (tax rates) are parsed as Decimal straight from the JSON text, never through float.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from bot.config import Settings
from bot.errors import AuthError, NotFound, Problem, ProviderError
from bot.sync.http import RetryPolicy, parse_retry_after, send_with_retry
from bot.sync.ratelimit import TenantLimiter
from bot.sync.xero_errors import PROVIDER, xero_error
from bot.sync.xero_models import Account, BrandingTheme, Organisation, TaxRate, TrackingCategory

logger = logging.getLogger(__name__)

__all__ = ["PROVIDER", "AccessTokens", "CallCounter", "XeroClient", "xero_error"]

API_PATH = "/api.xro/2.0"
# If-Modified-Since is to the second and not every change bumps UpdatedDateUTC at once: ask a little
# further back than the last run and let the fingerprints drop what did not change.
DEFAULT_MODIFIED_SINCE_OVERLAP = timedelta(minutes=1)

M = TypeVar("M", bound=BaseModel)


class AccessTokens(Protocol):
    """What the client needs of the token keeper (`bot.sync.xero_tokens.XeroTokenProvider`)."""

    async def access_token(
        self, connection_id: str, *, force_refresh: bool = False, rejected_token: str | None = None
    ) -> str: ...


@dataclass
class CallCounter:
    """Xero API calls made (every attempt counts: Xero counts them against the limits)."""

    count: int = 0


class XeroClient:
    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        tokens: AccessTokens,
        limiter: TenantLimiter,
        *,
        retry: RetryPolicy | None = None,
        counter: CallCounter | None = None,
        modified_since_overlap: timedelta = DEFAULT_MODIFIED_SINCE_OVERLAP,
    ) -> None:
        self._settings = settings
        self._http = http
        self._tokens = tokens
        self._limiter = limiter
        self._retry = retry or RetryPolicy()
        self._counter = counter or CallCounter()
        self._overlap = modified_since_overlap

    def for_run(self, counter: CallCounter | None = None) -> XeroClient:
        """The same client (HTTP pool, tokens, limiter) counting into a counter of its own."""
        return XeroClient(
            self._settings,
            self._http,
            self._tokens,
            self._limiter,
            retry=self._retry,
            counter=counter or CallCounter(),
            modified_since_overlap=self._overlap,
        )

    @property
    def calls(self) -> int:
        return self._counter.count

    @property
    def counter(self) -> CallCounter:
        return self._counter

    def day_remaining(self, tenant_id: str) -> int | None:
        """Xero's X-DayLimit-Remaining for the tenant, as last seen (None before the first call)."""
        return self._limiter.day_remaining(tenant_id)

    # --- resources -------------------------------------------------------------------------------

    async def organisation(self, connection_id: str, tenant_id: str) -> Organisation:
        body = await self._get(connection_id, tenant_id, "Organisation")
        items = _items(body, "Organisations", Organisation)
        if not items:
            raise NotFound(Problem.NO_ORGANISATION, provider=PROVIDER, where="Organisation")
        return items[0]

    async def accounts(
        self, connection_id: str, tenant_id: str, modified_since: datetime | None = None
    ) -> list[Account]:
        """The chart of accounts; with `modified_since`, only accounts changed since then (minus the overlap)."""
        headers: dict[str, str] = {}
        if modified_since is not None:
            headers["If-Modified-Since"] = self.if_modified_since(modified_since)
        body = await self._get(connection_id, tenant_id, "Accounts", headers)
        return _items(body, "Accounts", Account)

    async def tax_rates(self, connection_id: str, tenant_id: str) -> list[TaxRate]:
        body = await self._get(connection_id, tenant_id, "TaxRates")
        return _items(body, "TaxRates", TaxRate)

    async def branding_themes(self, connection_id: str, tenant_id: str) -> list[BrandingTheme]:
        body = await self._get(connection_id, tenant_id, "BrandingThemes")
        return _items(body, "BrandingThemes", BrandingTheme)

    async def tracking_categories(self, connection_id: str, tenant_id: str) -> list[TrackingCategory]:
        """Every category and option, archived ones too (`includeArchived=true`: without it Xero leaves
        them out, and an archived option would look deleted). Deleted ones are never returned."""
        body = await self._get(
            connection_id, tenant_id, "TrackingCategories", params={"includeArchived": "true"}
        )
        return _items(body, "TrackingCategories", TrackingCategory)

    def if_modified_since(self, since: datetime) -> str:
        """The header value: UTC `YYYY-MM-DDTHH:MM:SS`, `overlap` earlier than asked (naive means UTC)."""
        aware = since if since.tzinfo else since.replace(tzinfo=UTC)
        return (aware.astimezone(UTC) - self._overlap).strftime("%Y-%m-%dT%H:%M:%S")

    # --- plumbing --------------------------------------------------------------------------------

    async def _get(
        self,
        connection_id: str,
        tenant_id: str,
        resource: str,
        extra: dict[str, str] | None = None,
        *,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any] | None:
        url = f"{self._settings.xero_api_url}{API_PATH}/{resource}"
        if params:
            url = str(httpx.URL(url, params=params))
        token = await self._tokens.access_token(connection_id)
        try:
            response = await self._send(url, tenant_id, token, extra)
        except AuthError as exc:
            if exc.reconnect_required:
                raise
            # The token died before its time (revoked, clock skew, another refresher): one new token, one try.
            logger.info("Xero answered 401 (%s) for connection %s: refreshing once", exc.code, connection_id)
            token = await self._tokens.access_token(connection_id, force_refresh=True, rejected_token=token)
            response = await self._send(url, tenant_id, token, extra)
        if response.status_code == 304:
            return None
        return _json_body(response, resource)

    async def _send(
        self, url: str, tenant_id: str, token: str, extra: dict[str, str] | None
    ) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "xero-tenant-id": tenant_id,
            "Accept": "application/json",
            **(extra or {}),
        }

        async def attempt() -> httpx.Response:
            async with self._limiter.slot(tenant_id):
                self._counter.count += 1
                response = await self._http.get(url, headers=headers)
            self._limiter.observe(tenant_id, response.headers)
            if response.status_code == 429:
                retry_after = parse_retry_after(response.headers.get("Retry-After")) or 0.0
                self._limiter.pause(
                    tenant_id, retry_after, problem=response.headers.get("X-Rate-Limit-Problem", "")
                )
            logger.debug(
                "Xero GET %s tenant=%s -> %d (correlation %s)",
                httpx.URL(url).path,
                tenant_id,
                response.status_code,
                response.headers.get("Xero-Correlation-Id", "-"),
            )
            return response

        return await send_with_retry(attempt, provider=PROVIDER, policy=self._retry, classify=xero_error)


def _json_body(response: httpx.Response, resource: str) -> dict[str, Any]:
    content_type = response.headers.get("Content-Type", "")
    if "json" not in content_type:
        raise ProviderError(
            Problem.BAD_RESPONSE,
            provider=PROVIDER,
            status=response.status_code,
            where=f"{resource}, {content_type or 'no content type'}",
        )
    try:
        # Decimal for every number with a fraction: tax rates must not pass through float.
        body = json.loads(response.content, parse_float=Decimal)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=resource) from None
    if not isinstance(body, dict):
        raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=resource)
    status = body.get("Status")
    if status is not None and status != "OK":
        raise ProviderError(Problem.BAD_STATUS, provider=PROVIDER, where=resource, detail=str(status)[:80])
    return body


def _items(body: dict[str, Any] | None, key: str, model: type[M]) -> list[M]:
    if body is None:
        return []
    raw = body.get(key) or []
    if not isinstance(raw, list):
        raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=key)
    try:
        return [model.model_validate(item) for item in raw]
    except ValidationError as exc:
        # Field names and types only: the values may be financial data.
        where = ", ".join(".".join(str(p) for p in err["loc"]) for err in exc.errors()[:3])
        raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=f"{key}: {where}") from None
