"""Wire formats: dates, ETags, row representations, the internal request/response the Web API passes around."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.dataverse.schema import TableSpec

JSON_TYPE = "application/json; odata.metadata=minimal"
GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DATETIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$"
)


def iso(moment: datetime) -> str:
    """Dataverse returns Edm.DateTimeOffset in UTC, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime | None:
    if not _DATETIME_RE.match(text):
        return None
    value = text.replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def etag(version: int) -> str:
    return f'W/"{version}"'


def is_guid(text: str) -> bool:
    return bool(GUID_RE.match(text))


def represent(spec: TableSpec, row: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
    """A row as the Web API returns it: `@odata.etag`, the selected columns, always the primary key."""
    out: dict[str, Any] = {"@odata.etag": etag(int(row.get("__version", 0)))}
    columns = spec.columns if select is None else [spec.by_wire[name] for name in select]
    for column in columns:
        if column.name == spec.primary_key:
            continue
        out[column.wire] = row.get(column.name)
    out[spec.primary_key] = row[spec.primary_key]
    return out


@dataclass
class ApiRequest:
    """One Web API operation, from the HTTP request itself or from a part of a $batch."""

    method: str
    path: str  # relative to the service root (`xdc_taxtypes(...)`), still percent-encoded
    query: str  # raw query string, without '?'
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    writes: int = 0  # rows created, updated or deleted

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None, writes: int = 0) -> ApiResponse:
        merged = {"Content-Type": JSON_TYPE, "OData-Version": "4.0"}
        merged.update(headers or {})
        return cls(status, merged, json.dumps(payload, separators=(",", ":")).encode(), writes)

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None, writes: int = 0) -> ApiResponse:
        merged = {"OData-Version": "4.0"}
        merged.update(headers or {})
        return cls(status, merged, b"", writes)
