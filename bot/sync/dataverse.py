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
from typing import Any

import httpx

from bot.errors import AuthError, Problem, ProviderError
from bot.sync.dataverse_batch import (
    BatchRequest,
    decode_batch,
    encode_batch,
    entity_id,
    guid,
    key_segment,
    without_key,
)
from bot.sync.dataverse_errors import (
    PROVIDER,
    PreconditionFailed,
    bulk_unsupported,
    classify,
    worth_a_batch,
)
from bot.sync.dataverse_privileges import MissingPrivilege, depth_of
from bot.sync.dataverse_results import UpsertResult, WhoAmI, batch_result
from bot.sync.http import RetryPolicy, send_with_retry
from bot.sync.tables import REQUIRED_ROLE_PRIVILEGES, Depth, Table
from bot.sync.timezones import windows_to_iana

log = logging.getLogger(__name__)

__all__ = [
    "PROVIDER",
    "DataverseClient",
    "MissingPrivilege",
    "PreconditionFailed",
    "UpsertResult",
    "WhoAmI",
    "classify",
]

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


def _takes_force_refresh(token: Callable[..., Awaitable[str]]) -> bool:
    try:
        parameters = inspect.signature(token).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "force_refresh" or p.kind is p.VAR_KEYWORD for p in parameters)


def _where(method: str, url: str) -> str:
    """`GET xdc_accounts`: the method and the resource asked for, without keys or query (for the log)."""
    resource = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1].split("(", 1)[0]
    return f"{method} {resource}"


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
        # Tables for which the service refused UpsertMultiple as a message (not for their records).
        self._no_bulk: set[str] = set()

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
            # A success we did not ask for (a 204 where the body was wanted): not something we can read.
            raise ProviderError(
                Problem.BAD_RESPONSE, provider=PROVIDER, status=response.status_code, where=method
            )
        return response

    async def _get_json(self, url: str, params: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
        response = await self._request("GET", url, params=params, **kw)
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=_where("GET", url)) from exc
        if not isinstance(body, dict):
            raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=_where("GET", url))
        return body

    def _url(self, path: str) -> str:
        return f"{self.base}/{path}"

    async def get_json(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        """GET `{base}/{path}`: for readers of tables and system jobs outside our own."""
        return await self._get_json(self._url(path), params)

    async def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an action (`ImportSolutionAsync`, ...) and return its response body ({} for 204)."""
        response = await self._request("POST", self._url(path), json=body, ok=(200, 201, 204))
        if not response.content:
            return {}
        try:
            answer = response.json()
        except ValueError as exc:
            raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where=_where("POST", path)) from exc
        return answer if isinstance(answer, dict) else {}

    # -- setup checks --------------------------------------------------------------------------------

    async def who_am_i(self) -> WhoAmI:
        body = await self._get_json(self._url("WhoAmI"))
        return WhoAmI(
            user_id=str(body["UserId"]),
            business_unit_id=str(body["BusinessUnitId"]),
            organization_id=str(body["OrganizationId"]),
        )

    async def held_privileges(self, user_id: str) -> dict[str, Depth]:
        """Every privilege the user holds through their roles, by lower-cased name, at its deepest depth.

        `RetrieveUserPrivileges` answers `RolePrivileges: [{PrivilegeName, Depth, PrivilegeId,
        BusinessUnitId}]`, one entry per role that grants it (DP:webapi/reference/retrieveuserprivileges)."""
        body = await self._get_json(
            self._url(f"systemusers({guid(user_id)})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()")
        )
        held: dict[str, Depth] = {}
        for entry in body.get("RolePrivileges", []):
            if not isinstance(entry, dict):
                continue
            name = str(entry.get("PrivilegeName", "")).lower()
            depth = depth_of(entry.get("Depth"))
            if name and depth is not None and (name not in held or depth.rank > held[name].rank):
                held[name] = depth
        return held

    async def missing_privileges(self, user_id: str) -> list[MissingPrivilege]:
        """The connector role's privileges the user lacks, or holds at too shallow a depth, in the
        role's own order: table by table, then Create, Read, Write, Append, Append To."""
        held = await self.held_privileges(user_id)
        missing: list[MissingPrivilege] = []
        for name, depth, privilege, table in REQUIRED_ROLE_PRIVILEGES:
            have = held.get(name.lower())
            if have is None or have.rank < depth.rank:
                missing.append(MissingPrivilege(name, privilege, table.display_name, depth, have))
        return missing

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
        """Create or update the row with this alternate key; returns its id.

        The service answers an upsert by key with `OData-EntityId` in the *key* form, not the row's GUID
        (DP:use-upsert-insert-update-record, "Use Web API"), so the id comes from the body of
        `Prefer: return=representation` with `$select` of the primary key only, as that page advises
        (201 when it created the row, 200 when it updated it)."""
        response = await self._request(
            "PATCH",
            self._row_url(table, key),
            params={"$select": table.primary_key},
            json=without_key(table, key, row),
            headers={"Prefer": "return=representation"},
            ok=(200, 201, 204),
        )
        row_id: str | None = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get(table.primary_key):
                row_id = str(body[table.primary_key]).lower()
        # A proxy that drops the preference still answers 204; a GUID-form header is then good enough.
        row_id = row_id or entity_id(response.headers)
        if row_id is None:
            raise ProviderError(Problem.NO_ROW_ID, provider=PROVIDER, where=table.logical_name)
        return row_id

    async def upsert_many(
        self, table: Table, rows: Sequence[tuple[dict[str, str], dict[str, Any]]]
    ) -> list[UpsertResult]:
        """Upsert every row: one UpsertMultiple per 1,000 (DP:bulk-operations).

        A chunk refused as a whole (standard tables are all-or-nothing: one bad record fails them all)
        is sent again as a continue-on-error $batch, so the good rows land and each bad one carries its
        own error. The same happens when the service does not offer UpsertMultiple for the table
        (404/405/501, or a 400 saying the message is not supported): then the client remembers it and
        goes straight to $batch for the rest of its life, so a run never pays for both. Sign-in,
        permission and throttling refusals are not the records' fault and end the write."""
        results: list[UpsertResult] = []
        for start in range(0, len(rows), UPSERT_MULTIPLE_MAX):
            chunk = rows[start : start + UPSERT_MULTIPLE_MAX]
            if table.logical_name in self._no_bulk:
                results += await self._upsert_batch(table, chunk)
                continue
            try:
                await self._upsert_multiple(table, chunk)
            except ProviderError as exc:
                if not worth_a_batch(exc):
                    raise
                if bulk_unsupported(exc):
                    self._no_bulk.add(table.logical_name)
                log.info(
                    "UpsertMultiple of %d %s rows refused (%s); retrying them one by one in a $batch",
                    len(chunk),
                    table.logical_name,
                    exc.code or exc.status,
                )
                results += await self._upsert_batch(table, chunk)
            else:
                results += [UpsertResult(key=key, ok=True) for key, _ in chunk]
        return results

    async def _upsert_multiple(
        self, table: Table, chunk: Sequence[tuple[dict[str, str], dict[str, Any]]]
    ) -> None:
        targets = [
            {
                **without_key(table, key, row),
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
        requests = [
            BatchRequest("PATCH", self._row_url(table, key), body=without_key(table, key, row))
            for key, row in chunk
        ]
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
            raise ProviderError(
                Problem.BAD_RESPONSE, provider=PROVIDER, where=f"$batch: {str(exc)[:200]}"
            ) from exc
        return [
            batch_result(key, answers[i] if i < len(answers) else None) for i, (key, _) in enumerate(chunk)
        ]
