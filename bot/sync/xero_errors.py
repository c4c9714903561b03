"""Xero's statuses and error bodies as typed errors, for the API client (`bot.sync.xero`) and the OAuth
client (`bot.sync.xero_auth`, /connections). A module of its own so neither imports the other."""

from __future__ import annotations

import json
from typing import Any

import httpx

from bot.errors import AuthError, PermissionDenied, ProviderError
from bot.sync.http import error_for_status

PROVIDER = "xero"


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _validation_messages(body: dict[str, Any]) -> str:
    messages: list[str] = []
    for element in body.get("Elements") or []:
        if isinstance(element, dict):
            for error in element.get("ValidationErrors") or []:
                if isinstance(error, dict) and error.get("Message"):
                    messages.append(str(error["Message"]))
    return "; ".join(messages)


def xero_error(response: httpx.Response) -> ProviderError | None:
    """The typed error for an answer of Xero's API host (Accounting API, /connections); None if it succeeded."""
    status = response.status_code
    if status < 400:
        return None
    body = _problem(response)
    detail = str(body.get("Detail") or body.get("Message") or body.get("Title") or "")[:300]
    if status in (401, 403):
        # Xero's Detail leads with its code: "TokenExpired: token expired at ...", "AuthenticationUnsuccessful"
        # (403: the organisation is disconnected or not covered by this connection).
        head, _, rest = detail.partition(":")
        code = head.strip() or ("Unauthorized" if status == 401 else "Forbidden")
        if status == 403:
            return PermissionDenied(code, provider=PROVIDER, status=status, detail=rest.strip())
        return AuthError(
            code,
            reconnect_required=code == "AuthorizationUnsuccessful",
            provider=PROVIDER,
            status=status,
            detail=rest.strip(),
        )
    if status == 400:
        validation = _validation_messages(body)
        return error_for_status(
            response,
            provider=PROVIDER,
            detail="; ".join(part for part in (detail, validation) if part)[:500],
            code=str(body.get("Type") or "BadRequest"),
        )
    return error_for_status(response, provider=PROVIDER, detail=detail)
