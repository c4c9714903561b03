"""`$batch`: multipart/mixed requests with change sets, answered as Dataverse answers them.

Parts run in order. A change set is atomic: if one of its requests fails, everything it did is rolled back
and its response holds only that failure. Without `Prefer: odata.continue-on-error` the batch stops at the
first failure and answers 400 (the multipart body holds the failure); with it, every part runs and the
batch answers 200. `Content-ID: n` makes `$n` stand for the entity a change set request created, in later
URLs and `@odata.bind` values of that change set. At most 1,000 requests; a malformed batch gets a plain
JSON error.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sandbox.dataverse import errors
from sandbox.dataverse.operations import API_PATH, ContentIdMissing
from sandbox.dataverse.wire import ApiRequest, ApiResponse

MAX_REQUESTS = 1000
Dispatch = Callable[[ApiRequest, dict[str, str]], ApiResponse]
Transaction = Callable[[], AbstractContextManager[None]]
_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
_REASONS = {
    200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified", 400: "Bad Request", 401: "Unauthorized",
    403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 412: "Precondition Failed",
    413: "Payload Too Large", 429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
    503: "Service Unavailable",
}


@dataclass
class Part:
    request: ApiRequest | None = None
    content_id: str | None = None
    changeset: list[Part] = field(default_factory=list)


class _ChangesetFailed(Exception):
    def __init__(self, part: Part, response: ApiResponse) -> None:
        super().__init__("change set failed")
        self.part = part
        self.response = response


def boundary_of(content_type: str) -> str | None:
    if not content_type.lower().startswith("multipart/mixed"):
        return None
    match = _BOUNDARY.search(content_type)
    return match.group(1) if match else None


def parse(body: bytes, content_type: str) -> list[Part]:
    boundary = boundary_of(content_type)
    if boundary is None:
        raise errors.bad_query("The batch request must have a 'Content-Type: multipart/mixed;boundary=...' header.")
    parts = _split(body.decode("utf-8", errors="replace"), boundary)
    result: list[Part] = []
    for headers, content in parts:
        inner_boundary = boundary_of(headers.get("content-type", ""))
        if inner_boundary is not None:
            changeset = [
                _request_part(h, c, in_changeset=True) for h, c in _split(content, inner_boundary)
            ]
            result.append(Part(changeset=changeset))
        else:
            result.append(_request_part(headers, content, in_changeset=False))
    count = sum(len(p.changeset) if p.changeset else 1 for p in result)
    if count > MAX_REQUESTS:
        raise errors.bad_query(
            f"The batch request contains {count} requests; the maximum number of requests in a batch is {MAX_REQUESTS}."
        )
    return result


def _split(text: str, boundary: str) -> list[tuple[dict[str, str], str]]:
    delimiter = f"--{boundary}"
    if delimiter not in text:
        raise errors.bad_query(f"The batch body does not contain the boundary '{boundary}'.")
    segments = text.split(delimiter)[1:]
    parts: list[tuple[dict[str, str], str]] = []
    for segment in segments:
        if segment.startswith("--"):
            return parts
        segment = segment[2:] if segment.startswith("\r\n") else segment.lstrip("\n")
        segment = segment[:-2] if segment.endswith("\r\n") else segment.removesuffix("\n")
        headers, content = _headers_and_body(segment)
        parts.append((headers, content))
    raise errors.bad_query(f"The batch body is missing its closing boundary '{delimiter}--'.")


def _headers_and_body(text: str) -> tuple[dict[str, str], str]:
    """Header lines up to the first empty line, then the body (line endings CRLF or LF)."""
    lines = re.split(r"\r?\n", text)
    headers: dict[str, str] = {}
    index = 0
    while index < len(lines) and lines[index].strip():
        name, _, value = lines[index].partition(":")
        headers[name.strip().lower()] = value.strip()
        index += 1
    return headers, "\n".join(lines[index + 1:])


def _request_part(headers: dict[str, str], content: str, *, in_changeset: bool) -> Part:
    if boundary_of(headers.get("content-type", "")) is not None:
        raise errors.bad_query("Change sets cannot be nested.")
    request_line, _, rest = content.lstrip("\r\n").partition("\n")
    words = request_line.split()
    if len(words) < 2:
        raise errors.bad_query(f"The batch part has no request line: '{request_line.strip()}'.")
    method, target = words[0].upper(), words[1]
    inner_headers, body = _headers_and_body(rest)
    if in_changeset and method == "GET":
        raise errors.bad_query("GET requests are not allowed in a change set.")
    path, _, query = _relative(target).partition("?")
    return Part(
        request=ApiRequest(method, path, query, inner_headers, body.strip().encode()),
        content_id=headers.get("content-id"),
    )


def _relative(target: str) -> str:
    """A part's URL, relative to the service root (`$n` references are kept for the dispatcher)."""
    if target.startswith("$"):
        return target
    if "://" in target:
        split = urlsplit(target)
        target = split.path + (f"?{split.query}" if split.query else "")
    if API_PATH in target:
        return target.split(API_PATH, 1)[1]
    return target.lstrip("/")


def execute(
    parts: list[Part], dispatch: Dispatch, transaction: Transaction, continue_on_error: bool
) -> tuple[int, bytes, str, int]:
    """Run the parts; returns (status, multipart body, content type, rows written and kept)."""
    boundary = f"batchresponse_{uuid.uuid4()}"
    chunks: list[str] = []
    failed = False
    writes = 0
    for part in parts:
        if part.changeset:
            chunk, ok, written = _run_changeset(part, dispatch, transaction)
        else:
            assert part.request is not None
            response = dispatch(part.request, {})
            chunk, ok, written = _http_part(response, None), response.status < 400, response.writes
        writes += written
        chunks.append(chunk)
        if not ok:
            failed = True
            if not continue_on_error:
                break
    body = "".join(f"--{boundary}\r\n{chunk}" for chunk in chunks) + f"--{boundary}--\r\n"
    status = 400 if failed and not continue_on_error else 200
    return status, body.encode(), f"multipart/mixed; boundary={boundary}", writes


def _run_changeset(part: Part, dispatch: Dispatch, transaction: Transaction) -> tuple[str, bool, int]:
    content_ids: dict[str, str] = {}
    results: list[tuple[Part, ApiResponse]] = []
    boundary = f"changesetresponse_{uuid.uuid4()}"
    try:
        with transaction():
            for item in part.changeset:
                assert item.request is not None
                response = dispatch(item.request, content_ids)
                if response.status >= 400:
                    raise _ChangesetFailed(item, response)
                if item.content_id and "OData-EntityId" in response.headers:
                    content_ids[f"${item.content_id}"] = response.headers["OData-EntityId"]
                results.append((item, response))
    except _ChangesetFailed as failure:
        results, ok = [(failure.part, failure.response)], False
    else:
        ok = True
    inner = "".join(f"--{boundary}\r\n{_http_part(response, item.content_id)}" for item, response in results)
    chunk = f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n{inner}--{boundary}--\r\n"
    return chunk, ok, sum(response.writes for _, response in results) if ok else 0


def _http_part(response: ApiResponse, content_id: str | None) -> str:
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id:
        lines.append(f"Content-ID: {content_id}")
    lines += ["", f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    headers = dict(response.headers)
    if "OData-EntityId" in headers:
        headers.setdefault("Location", headers["OData-EntityId"])
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["", response.body.decode()]
    return "\r\n".join(lines) + "\r\n"


__all__ = ["MAX_REQUESTS", "ContentIdMissing", "Part", "execute", "parse"]
