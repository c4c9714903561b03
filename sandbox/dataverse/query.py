"""Reading rows: GET of one row (with `If-None-Match` -> 304) and of a collection with $select, $filter,
$orderby, $top, $count and `Prefer: odata.maxpagesize` paging through an opaque `@odata.nextLink`.

`$skip` is rejected, as Dataverse rejects it. The `$skiptoken` is Dataverse's paging cookie (page number,
first and last primary key of the page); without `$orderby` the next page starts after the last key, so
rows added meanwhile do not shift it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from sandbox.dataverse import errors, odata
from sandbox.dataverse.model import ColumnType, Privilege
from sandbox.dataverse.operations import Caller, Locator, context_url, find, not_found
from sandbox.dataverse.schema import TableSpec
from sandbox.dataverse.store import VERSION, TableStore
from sandbox.dataverse.wire import ApiResponse, etag, represent

MAX_PAGE = 5000
_EDM = {
    ColumnType.STRING: "Edm.String",
    ColumnType.MEMO: "Edm.String",
    ColumnType.INT: "Edm.Int32",
    ColumnType.CHOICE: "Edm.Int32",
    ColumnType.DECIMAL: "Edm.Decimal",
    ColumnType.BOOL: "Edm.Boolean",
    ColumnType.DATETIME: "Edm.DateTimeOffset",
    ColumnType.LOOKUP: "Edm.Guid",
    ColumnType.GUID: "Edm.Guid",
}
_SUPPORTED = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken"}


def table_schema(spec: TableSpec) -> odata.Schema:
    return odata.Schema(
        types={column.wire: _EDM[column.type] for column in spec.columns},
        type_name=f"Microsoft.Dynamics.CRM.{spec.logical_name}",
    )


@dataclass(frozen=True)
class QueryOptions:
    raw: str
    options: dict[str, str]

    @classmethod
    def parse(cls, raw: str) -> QueryOptions:
        options: dict[str, str] = {}
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if not name.startswith("$"):
                continue  # custom parameters such as `tag=` are ignored
            if name == "$skip":
                raise errors.bad_query("The query parameter $skip is not supported")
            if name not in _SUPPORTED:
                raise errors.bad_query(f"The query parameter {name} is not supported")
            options[name] = value
        return cls(raw, options)

    def select(self, spec: TableSpec) -> list[str] | None:
        text = self.options.get("$select")
        return odata.parse_select(text, table_schema(spec)) if text else None


def max_page_size(prefer: str) -> int | None:
    for item in prefer.split(","):
        name, _, value = item.strip().partition("=")
        if name == "odata.maxpagesize" and value.strip().isdigit():
            return max(1, min(MAX_PAGE, int(value)))
    return None


def retrieve(caller: Caller, store: TableStore, locator: Locator, query: str, if_none_match: str) -> ApiResponse:
    caller.require(Privilege.READ, store.spec)
    options = QueryOptions.parse(query)
    select = options.select(store.spec)
    row = find(store, locator)
    if row is None:
        raise not_found(store, locator)
    caller.require(Privilege.READ, store.spec, row)  # a Basic-depth grant reaches only the caller's rows
    tag = etag(int(row.get(VERSION, 0)))
    if if_none_match and if_none_match != "null" and tag in [t.strip() for t in if_none_match.split(",")]:
        return ApiResponse.empty(304, {"ETag": tag})
    body: dict[str, Any] = {"@odata.context": context_url(caller, store.spec, select, entity=True)}
    body.update(represent(store.spec, row, select))
    return ApiResponse.json(200, body, {"ETag": tag})


def collection(caller: Caller, store: TableStore, query: str, prefer: str) -> ApiResponse:
    spec = store.spec
    depth = caller.require(Privilege.READ, spec)
    options = QueryOptions.parse(query)
    schema = table_schema(spec)
    select = options.select(spec)
    # A query returns only the rows the caller's depth reaches; it is not refused.
    rows = [represent(spec, row) for row in store.rows.values() if caller.reaches(depth, row)]
    if "$filter" in options.options:
        predicate = odata.compile_filter(options.options["$filter"], schema)
        rows = [row for row in rows if predicate(row)]
    order = odata.parse_orderby(options.options["$orderby"], schema) if options.options.get("$orderby") else []
    rows = odata.sort_rows(rows, order or [(spec.primary_key, False)], schema)
    total = len(rows)
    page_size = max_page_size(prefer)
    headers: dict[str, str] = {}
    if page_size is not None:
        headers["Preference-Applied"] = f"odata.maxpagesize={page_size}"
    top = _top(options)
    if page_size is None and top is not None:
        page, next_link = rows[:top], None
    else:
        size = page_size or MAX_PAGE
        start, number = _resume(options.options.get("$skiptoken"), rows, spec, bool(order), size)
        page = rows[start:start + size]
        next_link = None
        if start + size < len(rows):
            token = _cookie(number + 1, spec.primary_key, page)
            next_link = f"{caller.api_base}/{spec.entity_set}?{_without_skiptoken(options.raw)}$skiptoken={token}"
    body: dict[str, Any] = {"@odata.context": context_url(caller, spec, select)}
    if options.options.get("$count") == "true":
        body["@odata.count"] = min(total, MAX_PAGE)
    body["value"] = [_project(row, select, spec) for row in page]
    if next_link:
        body["@odata.nextLink"] = next_link
    return ApiResponse.json(200, body, headers)


def _top(options: QueryOptions) -> int | None:
    text = options.options.get("$top")
    if text is None:
        return None
    if not text.isdigit():
        raise errors.bad_query(f"Invalid value '{text}' for $top query option found.")
    return int(text)


def _project(row: dict[str, Any], select: list[str] | None, spec: TableSpec) -> dict[str, Any]:
    if select is None:
        return row
    out = {"@odata.etag": row["@odata.etag"]}
    out.update({name: row.get(name) for name in select if name != spec.primary_key})
    out[spec.primary_key] = row[spec.primary_key]
    return out


def _cookie(page_number: int, primary_key: str, page: list[dict[str, Any]]) -> str:
    first, last = str(page[0][primary_key]).upper(), str(page[-1][primary_key]).upper()
    inner = f'<cookie page="{page_number - 1}"><{primary_key} last="{{{last}}}" first="{{{first}}}" /></cookie>'
    inner = re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(inner, safe=""))
    cookie = f'<cookie pagenumber="{page_number}" pagingcookie="{inner}" istracking="False" />'
    return quote(cookie, safe="=")


def _resume(token: str | None, rows: list[dict[str, Any]], spec: TableSpec, ordered: bool, size: int) -> tuple[int, int]:
    """(index of the first row of the page, page number) for a `$skiptoken` (already URL-decoded once)."""
    if token is None:
        return 0, 1
    number = re.search(r'pagenumber="(\d+)"', token)
    cookie = re.search(r'pagingcookie="([^"]*)"', token)
    if number is None or cookie is None:
        raise errors.bad_query("The $skiptoken query option value is not valid.")
    page_number = int(number.group(1))
    last = re.search(r'last="\{([0-9A-Fa-f-]{36})\}"', unquote(cookie.group(1)))
    if ordered or last is None:
        return (page_number - 1) * size, page_number
    last_id = last.group(1).lower()
    start = next((i for i, row in enumerate(rows) if str(row[spec.primary_key]) > last_id), len(rows))
    return start, page_number


def _without_skiptoken(raw: str) -> str:
    kept = [part for part in raw.split("&") if part and not unquote(part).startswith("$skiptoken=")]
    return "".join(f"{part}&" for part in kept)
