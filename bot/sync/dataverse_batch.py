"""The Dataverse Web API's wire details below the client: record references and `$batch` bodies.

References: a row is named by its primary key `set(<guid>)` or an alternate key `set(k1=v1,k2='v2')`;
writes answer with `OData-EntityId: {base}/{set}(<guid>)`.

`$batch`: only what the client needs, independent operations (no change sets) sent with
`Prefer: odata.continue-on-error`, so each operation gets its own response in order. Decoding also
understands nested change-set responses, because the service answers in that shape when they are used.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from bot.sync.tables import ColumnType, Table

CRLF = "\r\n"
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)$")


def guid(value: str) -> str:
    """A GUID as it goes into a URL; anything else is refused rather than interpolated."""
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError(f"not a GUID: {value!r}") from None


def odata_string(value: str) -> str:
    """A quoted OData string literal (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def key_segment(table: Table, key: dict[str, str]) -> str:
    """`(k1=v1,k2='v2')` for an alternate key. A lookup column in a key is named by its lookup property
    `_x_value` (DP:use-alternate-key-reference-record: "you must use the name of the corresponding
    Lookup Property"), e.g. `(_xdc_connectorid_value=<guid>,xdc_xeroaccountid='acc-1')`."""
    if not key:
        raise ValueError(f"empty key for {table.logical_name}")
    parts: list[str] = []
    for name, value in key.items():
        column = table.column(name)
        if column.type is ColumnType.LOOKUP:
            parts.append(f"_{name}_value={guid(value)}")
        elif column.type is ColumnType.GUID:
            parts.append(f"{name}={guid(value)}")
        elif column.type in (ColumnType.INT, ColumnType.CHOICE):
            parts.append(f"{name}={int(value)}")
        elif column.type is ColumnType.DECIMAL:
            parts.append(f"{name}={float(value)}")
        elif column.type is ColumnType.BOOL:
            parts.append(f"{name}={'true' if value.lower() in {'1', 'true'} else 'false'}")
        else:
            # Percent-encode what a URL path cannot carry; the quotes stay literal for the OData parser.
            parts.append(f"{name}={quote(odata_string(value), safe=chr(39))}")
    return "(" + ",".join(parts) + ")"


def entity_id(response_headers: Mapping[str, str]) -> str | None:
    """The row id from `OData-EntityId: {base}/{set}({guid})`."""
    value = response_headers.get("odata-entityid") or response_headers.get("OData-EntityId") or ""
    # Only the primary-key form counts: a key-form URL would name the connector's id, not the row's.
    found = _ENTITY_ID.search(value.strip())
    return found.group(1).lower() if found else None


@dataclass(frozen=True)
class BatchRequest:
    method: str
    url: str  # absolute, as the service's own examples write them
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BatchResponse:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else None


class BatchFormatError(ValueError):
    """The service answered something that is not a well-formed batch response."""


def encode_batch(requests: Sequence[BatchRequest], boundary: str | None = None) -> tuple[str, bytes]:
    """Return (Content-Type header, body) for a `$batch` of independent operations."""
    boundary = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    for index, request in enumerate(requests, start=1):
        lines += [
            f"--{boundary}",
            "Content-Type: application/http",
            "Content-Transfer-Encoding: binary",
            f"Content-ID: {index}",
            "",
            f"{request.method} {request.url} HTTP/1.1",
        ]
        headers = dict(request.headers)
        if request.body is not None:
            headers.setdefault("Content-Type", "application/json; type=entry")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append("")
        lines.append(json.dumps(request.body, separators=(",", ":")) if request.body is not None else "")
    lines += [f"--{boundary}--", ""]
    return f"multipart/mixed; boundary={boundary}", CRLF.join(lines).encode("utf-8")


def boundary_of(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "boundary" and value:
            return value.strip().strip('"')
    raise BatchFormatError(f"no boundary in content type {content_type!r}")


def decode_batch(content_type: str, body: bytes) -> list[BatchResponse]:
    """Every operation's response, in order, change-set responses flattened in place."""
    if not content_type.lower().startswith("multipart/mixed"):
        raise BatchFormatError(f"expected multipart/mixed, got {content_type!r}")
    text = body.decode("utf-8")
    responses: list[BatchResponse] = []
    for part in _parts(text, boundary_of(content_type)):
        part_headers, content = _split_head(part)
        part_type = part_headers.get("content-type", "")
        if part_type.lower().startswith("multipart/mixed"):
            responses += decode_batch(part_type, content.encode("utf-8"))
        else:
            responses.append(_parse_http_response(content))
    return responses


def _parts(text: str, boundary: str) -> list[str]:
    delimiter = f"--{boundary}"
    if delimiter not in text:
        raise BatchFormatError("boundary not found in body")
    chunks = text.split(delimiter)
    parts: list[str] = []
    # chunks[0] is the preamble; a chunk starting with "--" is the close delimiter and the epilogue.
    for chunk in chunks[1:]:
        if chunk.startswith("--"):
            break
        parts.append(_drop_final_line_break(chunk.removeprefix("\r\n").removeprefix("\n")))
    return parts


def _drop_final_line_break(text: str) -> str:
    # The line break before a delimiter belongs to the delimiter (RFC 2046), not to the part.
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


def _split_head(text: str) -> tuple[dict[str, str], str]:
    """Split header lines from the content at the first blank line (CRLF, or bare LF if a peer sends it)."""
    found = [(i, len(sep)) for sep in ("\r\n\r\n", "\n\n") if (i := text.find(sep)) >= 0]
    if not found:
        return _headers(text), ""
    index, length = min(found)
    return _headers(text[:index]), text[index + length :]


def _headers(head: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def _parse_http_response(content: str) -> BatchResponse:
    status_line, _, rest = content.lstrip("\r\n").partition("\n")
    pieces = status_line.strip().split(" ", 2)
    if len(pieces) < 2 or not pieces[0].startswith("HTTP/") or not pieces[1].isdigit():
        raise BatchFormatError(f"bad status line in batch response: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    if rest.startswith(("\r\n", "\n")):
        body = rest  # no headers: a blank line, then the body
    else:
        headers, body = _split_head(rest)
    return BatchResponse(
        status=int(pieces[1]),
        reason=pieces[2] if len(pieces) > 2 else "",
        headers=headers,
        body=body.strip("\r\n"),
    )


def without_key(table: Table, key: dict[str, str], row: dict[str, Any]) -> dict[str, Any]:
    """The row without the alternate key's own data.

    DP:use-upsert-insert-update-record, "Guidance for composing requests": "When you use alternate keys to
    identify a record, don't include the alternate key data in the portion of the request that represents
    the data to save." The service copies the key values from the URL (or `@odata.id`) into a new row, and
    ignores them for an existing one. A lookup in the key is its `<navigation property>@odata.bind`."""
    drop: set[str] = set()
    for name in key:
        column = table.column(name)
        drop.add(name)
        if column.type is ColumnType.LOOKUP:
            drop.add(f"{column.navigation_property}@odata.bind")
    return {name: value for name, value in row.items() if name not in drop}
