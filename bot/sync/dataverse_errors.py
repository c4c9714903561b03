"""Dataverse's refusals as the product's typed errors, decided once (DP:reference/web-service-error-codes).

401 -> AuthError(reconnect_required=True)     403 -> PermissionDenied (the PrivilegeDenied text)
404 -> NotFound                               412 -> PreconditionFailed
429 -> RateLimited, 5xx / transport -> TransientProviderError
other 4xx -> ProviderError(status, code)
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.errors import AuthError, PermissionDenied, ProviderError, RateLimited
from bot.sync.http import error_for_status

PROVIDER = "dynamics"
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
        return AuthError(code, reconnect_required=True, provider=PROVIDER, status=status, detail=message)
    if status == 403:
        # PrivilegeDenied names the missing privilege: worth showing to the person who can grant it.
        return PermissionDenied(code, provider=PROVIDER, status=status, detail=message)
    if status == 412:
        return PreconditionFailed(code, provider=PROVIDER, status=status, detail=message)
    error = error_for_status(response, provider=PROVIDER, detail=message, code=code)
    if isinstance(error, RateLimited):
        error.problem = _THROTTLE_PROBLEMS.get(code.lower(), error.problem)
    return error


# Refusals that say the message itself is not available for the table, rather than a record being bad.
_UNSUPPORTED_STATUSES = frozenset({404, 405, 501})
_UNSUPPORTED_WORDS = ("not supported", "is not enabled", "does not support", "unsupported")


def bulk_unsupported(exc: ProviderError) -> bool:
    if exc.status in _UNSUPPORTED_STATUSES:
        return True
    text = exc.detail.lower()
    return exc.status == 400 and any(word in text for word in _UNSUPPORTED_WORDS)


def worth_a_batch(exc: ProviderError) -> bool:
    """Whether one by one could succeed where the bulk call failed: a refusal of the request (4xx other
    than sign-in, permission and throttling, or 501), never an outage that retries already gave up on."""
    if isinstance(exc, AuthError | PermissionDenied | RateLimited | PreconditionFailed):
        return False
    if exc.status is None:
        return False
    return 400 <= exc.status < 500 or exc.status == 501
