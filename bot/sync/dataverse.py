"""The Dataverse Web API client: our tables, the setup checks, bulk upserts.

Every call goes to `{api_url}/api/data/v9.2/...` with the OData headers the service documents and a
fresh bearer token from the `token` callable (MSAL's silent acquisition, see bot.sync.dynamics_auth).
HTTP statuses become the typed errors of bot.errors here and nowhere else:

    401 -> AuthError(reconnect_required=True)     403 -> PermissionDenied (the PrivilegeDenied text)
    404 -> NotFound                               412 -> PreconditionFailed
    429 -> RateLimited, 5xx / transport -> TransientProviderError: both retried first (Retry-After honoured)
    other 4xx -> ProviderError(status, code)

`calls` counts every HTTP request sent (retries included), for the run report.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bot.errors import AuthError, PermissionDenied, ProviderError, RateLimited
from bot.sync.dataverse_batch import (
    BatchRequest,
    BatchResponse,
    decode_batch,
    encode_batch,
    entity_id,
    guid,
    key_segment,
    odata_string,
)
from bot.sync.http import RetryPolicy, error_for_status, send_with_retry
from bot.sync.tables import CONNECTOR_USER_ROLE, SOLUTION_UNIQUE_NAME, Table
from bot.sync.timezones import windows_to_iana

log = logging.getLogger(__name__)

PROVIDER = "dynamics"
API_PATH = "/api/data/v9.2"
# Sent on every call (DP:webapi/compose-http-requests-handle-errors); `If-None-Match: null` keeps
# intermediaries from answering with a cached representation.
ODATA_HEADERS: dict[str, str] = {
    "Accept": "application/json",
    "OData-MaxVersion": "4.0",
    "OData-Version": "4.0",
    "If-None-Match": "null",
}
UPSERT_MULTIPLE_MAX = 1000  # the documented starting point per call, and $batch's hard limit
MAX_PAGE_SIZE = 5000
# Service protection limits, by error code (DP:api-limits).
_THROTTLE_PROBLEMS = {
    "0x80072322": "requests",
    "0x80072321": "execution_time",
    "0x80072326": "concurrency",
}


class PreconditionFailed(ProviderError):
    """412: a conditional write lost (`If-Match` ETag changed, or `If-None-Match: *` found the row)."""


def error_message(body: Any, text: str = "") -> tuple[str, str]:
    """(message, code) from `{"error": {"code", "message"}}`; the code is often empty."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or "").strip(), str(error.get("code") or "").strip()
    return text.strip()[:300], ""


def classify(response: httpx.Response) -> ProviderError | None:
    """Dataverse's statuses as the product's typed errors (None: success)."""
    status = response.status_code
    if status < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    message, code = error_message(body, response.text)
    if status == 401:
        return AuthError(
            "Dynamics 365 no longer accepts this connection's sign-in" + (f": {message}" if message else ""),
            reconnect_required=True,
            provider=PROVIDER,
            status=status,
            code=code,
        )
    if status == 403:
        # PrivilegeDenied names the missing privilege: worth showing to the person who can grant it.
        return PermissionDenied(
            "Dynamics 365 denied access" + (f": {message}" if message else ""),
            provider=PROVIDER,
            status=status,
            code=code,
        )
    if status == 412:
        return PreconditionFailed(
            "Dynamics 365 refused a conditional write" + (f": {message}" if message else ""),
            provider=PROVIDER,
            status=status,
            code=code,
        )
    error = error_for_status(response, provider=PROVIDER, detail=message, code=code)
    if isinstance(error, RateLimited):
        error.problem = _THROTTLE_PROBLEMS.get(code.lower(), error.problem)
    return error


@dataclass(frozen=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True)
class UpsertResult:
    key: dict[str, str]
    ok: bool
    row_id: str | None = None  # known after a single upsert or a $batch, not after UpsertMultiple
    error: str = ""
    status: int | None = None
    code: str = ""


def _takes_force_refresh(token: Callable[..., Awaitable[str]]) -> bool:
    try:
        parameters = inspect.signature(token).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "force_refresh" or p.kind is p.VAR_KEYWORD for p in parameters)


class DataverseClient:
    """`token()` returns a bearer token for the environment. If it also takes `force_refresh=True`
    (as `functools.partial(DynamicsAuth.access_token, connection_id, env_url)` does), a 401 gets one
    retry with a freshly refreshed token before it becomes AuthError(reconnect_required=True)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        token: Callable[..., Awaitable[str]],
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base = f"{api_url.rstrip('/')}{API_PATH}"
        self._http = http
        self._token = token
        self._can_refresh = _takes_force_refresh(token)
        self._retry = retry or RetryPolicy()
        self.calls = 0
        # The service's recommended degree of parallelism (x-ms-dop-hint), once seen.
        self.dop_hint: int | None = None

    # -- plumbing ------------------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        ok: Sequence[int] = (200, 201, 204),
    ) -> httpx.Response:
        extra = dict(headers or {})
        if json is not None or content is not None:
            extra.setdefault("Content-Type", "application/json")
        refresh = False

        async def send() -> httpx.Response:
            nonlocal refresh
            token = await (self._token(force_refresh=True) if refresh else self._token())
            refresh = False
            self.calls += 1
            return await self._http.request(
                method,
                url,
                params=params,
                json=json,
                content=content,
                headers={**ODATA_HEADERS, **extra, "Authorization": f"Bearer {token}"},
            )

        try:
            response = await send_with_retry(send, provider=PROVIDER, policy=self._retry, classify=classify)
        except AuthError as exc:
            if exc.status != 401 or not self._can_refresh:
                raise
            # The cached token was refused before its expiry (revoked, clock skew): one fresh try.
            log.info("Dataverse refused the access token; refreshing it once")
            refresh = True
            response = await send_with_retry(send, provider=PROVIDER, policy=self._retry, classify=classify)
        hint = response.headers.get("x-ms-dop-hint", "")
        if hint.isdigit():
            self.dop_hint = int(hint)
        if response.status_code not in ok:
            raise ProviderError(
                f"Dataverse answered {response.status_code} to {method}", provider=PROVIDER, status=response.status_code
            )
        return response

    async def _get_json(self, url: str, params: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
        response = await self._request("GET", url, params=params, **kw)
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError("Dataverse answered something unreadable", provider=PROVIDER) from exc
        if not isinstance(body, dict):
            raise ProviderError("Dataverse answered something unreadable", provider=PROVIDER)
        return body

    def _url(self, path: str) -> str:
        return f"{self.base}/{path}"

    # -- setup checks --------------------------------------------------------------------------------

    async def who_am_i(self) -> WhoAmI:
        body = await self._get_json(self._url("WhoAmI"))
        return WhoAmI(
            user_id=str(body["UserId"]),
            business_unit_id=str(body["BusinessUnitId"]),
            organization_id=str(body["OrganizationId"]),
        )

    async def solution_installed(self, unique_name: str = SOLUTION_UNIQUE_NAME) -> bool:
        body = await self._get_json(
            self._url("solutions"),
            {"$select": "solutionid,uniquename,version", "$filter": f"uniquename eq {odata_string(unique_name)}"},
        )
        return any(
            str(row.get("uniquename", "")).lower() == unique_name.lower() for row in body.get("value", [])
        )

    async def missing_privileges(self, user_id: str) -> list[str]:
        """The connector role's privileges the user lacks (any depth counts), in the role's own order:
        table by table, then Create, Read, Write, Append, Append To."""
        body = await self._get_json(
            self._url(f"systemusers({guid(user_id)})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()")
        )
        held = {
            str(p.get("PrivilegeName", "")).lower()
            for p in body.get("RolePrivileges", [])
            if isinstance(p, dict)
        }
        return [name for name in CONNECTOR_USER_ROLE.privileges if name.lower() not in held]

    async def user_timezone(self, user_id: str) -> str | None:
        """The user's Dynamics time zone as an IANA name; None if unset or unknown."""
        settings = await self._get_json(
            self._url(f"usersettingscollection({guid(user_id)})"), {"$select": "timezonecode"}
        )
        code = settings.get("timezonecode")
        if not isinstance(code, int):
            return None
        definitions = await self._get_json(
            self._url("timezonedefinitions"),
            {"$select": "standardname,timezonecode", "$filter": f"timezonecode eq {code}"},
        )
        for row in definitions.get("value", []):
            name = row.get("standardname") if isinstance(row, dict) else None
            if isinstance(name, str) and name:
                return windows_to_iana(name)
        return None

    # -- reads ---------------------------------------------------------------------------------------

    async def find_rows(
        self, table: Table, filter: str, select: list[str], *, page_size: int = MAX_PAGE_SIZE
    ) -> list[dict[str, Any]]:
        """Every matching row (`filter` is an OData $filter, "" for all), following `@odata.nextLink`."""
        params: dict[str, str] | None = {"$select": ",".join(select)} if select else {}
        if filter and params is not None:
            params["$filter"] = filter
        url = self._url(table.entity_set)
        rows: list[dict[str, Any]] = []
        while url:
            page = await self._get_json(url, params, headers={"Prefer": f"odata.maxpagesize={page_size}"})
            rows += [row for row in page.get("value", []) if isinstance(row, dict)]
            next_link = page.get("@odata.nextLink")
            url = next_link if isinstance(next_link, str) else ""
            params = None  # the next link carries the whole query, to be used unchanged
        return rows

    async def rows_for_connector(
        self, table: Table, connector_row_id: str, select: list[str], *, page_size: int = MAX_PAGE_SIZE
    ) -> list[dict[str, Any]]:
        """The rows of `table` that belong to one connector row."""
        if not table.connector_lookup:
            raise ValueError(f"{table.logical_name} has no connector lookup")
        where = f"_{table.connector_lookup}_value eq {guid(connector_row_id)}"
        return await self.find_rows(table, where, select, page_size=page_size)

    # -- writes --------------------------------------------------------------------------------------

    def _row_url(self, table: Table, key: dict[str, str]) -> str:
        return self._url(f"{table.entity_set}{key_segment(table, key)}")

    async def upsert(self, table: Table, key: dict[str, str], row: dict[str, Any]) -> str:
        """Create or update the row with this alternate key; returns its id."""
        response = await self._request("PATCH", self._row_url(table, key), json=row, ok=(200, 201, 204))
        row_id = entity_id(response.headers)
        if row_id is None and response.content:
            # With `Prefer: return=representation` the row comes back instead of the header.
            body = response.json()
            if isinstance(body, dict) and body.get(table.primary_key):
                row_id = str(body[table.primary_key])
        if row_id is None:
            raise ProviderError(
                f"Dataverse did not say which {table.logical_name} row it wrote", provider=PROVIDER
            )
        return row_id

    async def upsert_many(
        self, table: Table, rows: Sequence[tuple[dict[str, str], dict[str, Any]]]
    ) -> list[UpsertResult]:
        """Upsert every row: one UpsertMultiple per 1,000. A chunk refused as a whole (400: one bad
        record fails them all) is sent again as a continue-on-error $batch, so the good rows land
        and each bad one carries its own error."""
        results: list[UpsertResult] = []
        for start in range(0, len(rows), UPSERT_MULTIPLE_MAX):
            chunk = rows[start : start + UPSERT_MULTIPLE_MAX]
            try:
                await self._upsert_multiple(table, chunk)
            except ProviderError as exc:
                if exc.status != 400 or type(exc) is not ProviderError:
                    raise
                log.info(
                    "UpsertMultiple of %d %s rows refused (%s); retrying them one by one in a $batch",
                    len(chunk), table.logical_name, exc.code or exc.status,
                )
                results += await self._upsert_batch(table, chunk)
            else:
                results += [UpsertResult(key=key, ok=True) for key, _ in chunk]
        return results

    async def _upsert_multiple(self, table: Table, chunk: Sequence[tuple[dict[str, str], dict[str, Any]]]) -> None:
        targets = [
            {
                **row,
                "@odata.type": f"Microsoft.Dynamics.CRM.{table.logical_name}",
                "@odata.id": f"{table.entity_set}{key_segment(table, key)}",
            }
            for key, row in chunk
        ]
        await self._request(
            "POST",
            self._url(f"{table.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple"),
            json={"Targets": targets},
        )

    async def _upsert_batch(
        self, table: Table, chunk: Sequence[tuple[dict[str, str], dict[str, Any]]]
    ) -> list[UpsertResult]:
        requests = [BatchRequest("PATCH", self._row_url(table, key), body=row) for key, row in chunk]
        content_type, body = encode_batch(requests)
        response = await self._request(
            "POST",
            self._url("$batch"),
            content=body,
            headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
            ok=(200,),
        )
        try:
            answers = decode_batch(response.headers.get("content-type", ""), response.content)
        except ValueError as exc:
            raise ProviderError("Dataverse answered a $batch unreadably", provider=PROVIDER) from exc
        return [_batch_result(key, answers[i] if i < len(answers) else None) for i, (key, _) in enumerate(chunk)]


def _batch_result(key: dict[str, str], answer: BatchResponse | None) -> UpsertResult:
    if answer is None:
        return UpsertResult(key=key, ok=False, error="Dataverse did not run this operation")
    if answer.ok:
        return UpsertResult(key=key, ok=True, row_id=entity_id(answer.headers), status=answer.status)
    try:
        body = answer.json()
    except ValueError:
        body = None
    message, code = error_message(body, answer.body)
    return UpsertResult(key=key, ok=False, error=message, status=answer.status, code=code)
