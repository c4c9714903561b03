"""api.xero.com/api.xro/2.0: Accounts, TaxRates, BrandingThemes, TrackingCategories and Organisation (GET only).

Checks run in the order Xero's gateway appears to apply them: bearer token (401), xero-tenant-id
(403), scope (401 AuthorizationUnsuccessful), then limits (429). Paths and parameter names are
case-insensitive, as at Xero.

Accept: real Xero answers XML unless `Accept: application/json` is sent. The sandbox refuses with 406
instead of emulating XML, so that a client which forgets the header fails loudly here rather than
parsing XML in production.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from sandbox.clock import Clock
from sandbox.xero import wire
from sandbox.xero.identity import Identity
from sandbox.xero.identity_records import SETTINGS_SCOPES, BearerError
from sandbox.xero.limits import RateLimiter
from sandbox.xero.orgs import Org
from sandbox.xero.query import QueryError, apply_order, compile_where
from sandbox.xero.resources import ACCOUNT_FIELDS, TAX_RATE_FIELDS, Kind, Record
from sandbox.xero.tracking import CATEGORY_FIELDS, UnknownTracking

API_PREFIX = "/api.xro/2.0/"


class _Answer(Exception):
    """Stop handling and send this response (404s and query errors deep inside a resource)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def parse_if_modified_since(value: str | None) -> datetime | None:
    """ISO 8601 (what Xero documents) or an HTTP date; naive means UTC; milliseconds are ignored."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None  # like any HTTP server: an unreadable validator is ignored
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _param(query: Mapping[str, str], name: str) -> str | None:
    for key, value in query.items():
        if key.lower() == name and value.strip():
            return value
    return None


def _select(records: list[Record], query: Mapping[str, str], fields: Mapping[str, Kind], type_name: str,
            default_order: Callable[[Record], Any]) -> list[Record]:
    out = sorted(records, key=default_order)
    try:
        where = _param(query, "where")
        if where:
            test = compile_where(where, fields, type_name)
            out = [r for r in out if test(r)]
        order = _param(query, "order")
        if order:
            out = apply_order(out, order, fields, type_name)
    except QueryError as exc:
        raise _Answer(wire.json_response(wire.query_error(str(exc)), status=400)) from None
    return out


def _not_found() -> _Answer:
    return _Answer(web.Response(status=404, text=wire.NOT_FOUND_TEXT))


def account_order(r: Record) -> tuple[Any, ...]:
    return (r.get("Code") is not None, (r.get("Code") or "").casefold(), r["Name"].casefold())


class AccountingApi:
    def __init__(self, *, clock: Clock, identity: Identity, orgs: Callable[[], Mapping[str, Org]],
                 limiter: RateLimiter, latency: Callable[[], float], provider_name: str) -> None:
        self.clock, self.identity, self.orgs, self.limiter = clock, identity, orgs, limiter
        self.latency, self.provider_name = latency, provider_name

    async def handle(self, request: web.Request) -> web.StreamResponse:
        cid = wire.correlation_id()
        headers = {"Xero-Correlation-Id": cid, "X-AppMinLimit-Remaining": str(self.limiter.app_remaining())}
        try:
            access = self.identity.authenticate(request.headers.get("Authorization"))
        except BearerError as exc:
            return wire.json_response(wire.problem(401, exc.detail, cid), status=401, headers=headers)
        tenant_id = request.headers.get("xero-tenant-id", "").strip().lower()
        org = self.orgs().get(tenant_id)
        if org is None or tenant_id not in self.identity.connected_tenants(access.email, access.client_id):
            return wire.json_response(wire.problem(403, "AuthenticationUnsuccessful", cid), status=403,
                                      headers=headers)
        if not SETTINGS_SCOPES & set(access.scopes):
            return wire.json_response(wire.problem(401, "AuthorizationUnsuccessful", cid), status=401,
                                      headers=headers)
        if "application/json" not in request.headers.get("Accept", "").lower():
            return web.Response(status=406, headers=headers,
                                text="Not Acceptable: the sandbox answers JSON only; send Accept: application/json")
        verdict = self.limiter.admit(tenant_id)
        headers.update(verdict.headers)
        if verdict.problem is not None:
            headers.update({"Retry-After": str(verdict.retry_after), "X-Rate-Limit-Problem": verdict.problem})
            return web.Response(status=429, text="Rate limit exceeded", headers=headers)
        try:
            if self.latency() > 0:
                await asyncio.sleep(self.latency())
            if request.method != "GET":
                return web.Response(status=405, headers=headers,
                                    text="The sandbox serves the settings endpoints read-only (GET)")
            key, items = self._resource(org, request)
            body = wire.envelope(key, items, cid=cid, provider=self.provider_name, now=self.clock.now())
            return wire.json_response(body, headers=headers)
        except _Answer as answer:
            answer.response.headers.update(headers)
            return answer.response
        finally:
            self.limiter.release(tenant_id)

    def _resource(self, org: Org, request: web.Request) -> tuple[str, list[Record]]:
        parts = [p for p in request.path[len(API_PREFIX):].split("/") if p]
        if not parts or len(parts) > 2:
            raise _not_found()
        name, key = parts[0].lower(), parts[1] if len(parts) == 2 else None
        if name == "accounts":
            return "Accounts", self._accounts(org, key, request)
        if name == "taxrates":
            if key is not None:
                found = org.tax_rates.get(key) or org.tax_rates.get(key.upper())
                if found is None:
                    raise _not_found()
                return "TaxRates", [found]
            return "TaxRates", _select(list(org.tax_rates.values()), request.query, TAX_RATE_FIELDS,
                                       "TaxRate", lambda r: r["Name"].casefold())
        if name == "brandingthemes":
            if key is not None:
                theme = org.themes.get(key.lower())
                if theme is None:
                    raise _not_found()
                return "BrandingThemes", [theme]
            return "BrandingThemes", sorted(org.themes.values(), key=lambda t: (t["SortOrder"], t["Name"]))
        if name == "trackingcategories":
            return "TrackingCategories", self._tracking(org, key, request)
        if name == "organisation" and key is None:
            return "Organisations", [org.organisation]
        raise _not_found()

    def _accounts(self, org: Org, key: str | None, request: web.Request) -> list[Record]:
        if key is not None:
            account = org.accounts.get(key.lower())
            if account is None:
                raise _not_found()
            return [account]
        records = list(org.accounts.values())
        since = parse_if_modified_since(request.headers.get("If-Modified-Since"))
        if since is not None:
            records = [r for r in records if r["UpdatedDateUTC"] >= since]
        return _select(records, request.query, ACCOUNT_FIELDS, "Account", account_order)

    def _tracking(self, org: Org, key: str | None, request: web.Request) -> list[Record]:
        """`includeArchived=true` adds ARCHIVED categories and options (spec: getTrackingCategories);
        one category by id is returned whatever its status (spec: getTrackingCategory)."""
        if key is not None:
            try:
                org.tracking.category(key)
            except UnknownTracking:
                raise _not_found() from None
            return [c for c in org.tracking.read(include_archived=True) if c["TrackingCategoryID"] == key.lower()]
        include = (_param(request.query, "includearchived") or "").strip().lower() == "true"
        records = org.tracking.read(include_archived=include)
        return _select(records, request.query, CATEGORY_FIELDS, "TrackingCategory",
                       lambda r: r["Name"].casefold())
