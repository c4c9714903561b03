"""What the Dataverse client answers with: who the caller is, and one result per upserted row.

Re-exported by `bot.sync.dataverse`. A `$batch` answers each operation with its own status, headers and
body, in request order (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import Problem
from bot.sync.dataverse_batch import BatchResponse, entity_id
from bot.sync.dataverse_errors import error_message


@dataclass(frozen=True)
class WhoAmI:
    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True)
class UpsertResult:
    key: dict[str, str]
    ok: bool
    row_id: str | None = None  # only when the service named the row by its GUID (never for key-form upserts)
    error: str = ""
    status: int | None = None
    code: str = ""


def batch_result(key: dict[str, str], answer: BatchResponse | None) -> UpsertResult:
    if answer is None:
        return UpsertResult(key=key, ok=False, code=Problem.NOT_RUN)
    if answer.ok:
        return UpsertResult(key=key, ok=True, row_id=entity_id(answer.headers), status=answer.status)
    try:
        body = answer.json()
    except ValueError:
        body = None
    message, code = error_message(body, answer.body)
    return UpsertResult(key=key, ok=False, error=message, status=answer.status, code=code)
