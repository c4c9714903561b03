"""The shared retry helper (bot.sync.http) and the Xero status mapping, with scripted outcomes.

The real HTTP paths are covered against the Xero sandbox in tests/integration; here each attempt's
outcome is scripted so every branch (and every wait) is visible."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.errors import (
    AuthError,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    TransientProviderError,
)
from bot.sync.http import RetryPolicy, error_for_status, parse_retry_after, send_with_retry
from bot.sync.xero import xero_error

REQUEST = httpx.Request("GET", "https://api.xero.com/api.xro/2.0/Accounts")

Outcome = httpx.Response | Exception


def response(status: int, json: object | None = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=json, headers=headers, request=REQUEST)


class Script:
    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.sleeps: list[float] = []

    async def send(self) -> httpx.Response:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def policy(self, **kw: float) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, jitter=0, **kw)  # type: ignore[arg-type]


async def test_success_needs_one_call() -> None:
    script = Script(response(200, {"ok": True}))
    result = await send_with_retry(script.send, provider="xero", policy=script.policy())
    assert result.json() == {"ok": True}
    assert script.calls == 1
    assert script.sleeps == []


async def test_5xx_and_dropped_connections_back_off_exponentially() -> None:
    script = Script(
        response(503),
        httpx.RemoteProtocolError("Server disconnected without sending a response.", request=REQUEST),
        httpx.ReadError("connection reset", request=REQUEST),
        httpx.ReadTimeout("timed out", request=REQUEST),
        response(200),
    )
    result = await send_with_retry(script.send, provider="xero", policy=script.policy(backoff_initial=0.5))
    assert result.status_code == 200
    assert script.sleeps == [0.5, 1.0, 2.0, 4.0]


async def test_gives_up_after_the_attempts_with_a_typed_error() -> None:
    script = Script(*[response(502) for _ in range(5)])
    with pytest.raises(TransientProviderError) as info:
        await send_with_retry(script.send, provider="xero", policy=script.policy(attempts=5, backoff_max=1))
    assert info.value.status == 502
    assert script.calls == 5
    assert script.sleeps == [0.5, 1.0, 1.0, 1.0]


async def test_429_sleeps_exactly_retry_after() -> None:
    script = Script(response(429, headers={"Retry-After": "3", "X-Rate-Limit-Problem": "minute"}), response(200))
    await send_with_retry(script.send, provider="xero", policy=script.policy())
    assert script.sleeps == [3.0]


async def test_429_beyond_the_cap_raises_at_once() -> None:
    script = Script(response(429, headers={"Retry-After": "64800", "X-Rate-Limit-Problem": "day"}))
    with pytest.raises(RateLimited) as info:
        await send_with_retry(script.send, provider="xero", policy=script.policy(max_retry_after=60))
    assert info.value.retry_after == 64800
    assert info.value.problem == "day"
    assert script.calls == 1
    assert script.sleeps == []


async def test_client_errors_are_not_retried() -> None:
    for status, kind in ((400, ProviderError), (401, AuthError), (403, PermissionDenied), (404, NotFound)):
        script = Script(response(status))
        with pytest.raises(kind):
            await send_with_retry(script.send, provider="dataverse", policy=script.policy())
        assert script.calls == 1


async def test_not_idempotent_retries_only_what_never_reached_the_server() -> None:
    script = Script(httpx.ConnectError("refused", request=REQUEST), response(200))
    await send_with_retry(script.send, provider="xero", policy=script.policy(), idempotent=False)
    assert script.calls == 2

    script = Script(httpx.ReadError("reset", request=REQUEST), response(200))
    with pytest.raises(TransientProviderError) as info:
        await send_with_retry(script.send, provider="xero", policy=script.policy(), idempotent=False)
    assert type(info.value) is TransientProviderError
    assert script.calls == 1

    script = Script(response(500), response(200))
    with pytest.raises(TransientProviderError):
        await send_with_retry(script.send, provider="xero", policy=script.policy(), idempotent=False)
    assert script.calls == 1


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1", 1.0), (" 2.5 ", 2.5), ("-4", 0.0), (None, None), ("", None), ("soon", None)],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    value = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value, now=now) == pytest.approx(30)


def test_error_for_status_success_is_none() -> None:
    assert error_for_status(response(204), provider="x") is None
    assert error_for_status(response(304), provider="x") is None




@pytest.mark.parametrize(
    ("status", "body", "check"),
    [
        (401, {"Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired at 04/09/2023 05:16:59"},
         lambda e: isinstance(e, AuthError) and e.code == "TokenExpired" and not e.reconnect_required),
        (401, {"Title": "Unauthorized", "Detail": "AuthorizationUnsuccessful"},
         lambda e: isinstance(e, AuthError) and e.reconnect_required),
        (403, {"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"},
         lambda e: isinstance(e, PermissionDenied) and e.code == "AuthenticationUnsuccessful"),
        (400, {"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
               "Elements": [{"ValidationErrors": [{"Message": "Account code must be unique"}]}]},
         lambda e: type(e) is ProviderError and e.code == "ValidationException" and "must be unique" in str(e)),
        (404, None, lambda e: isinstance(e, NotFound)),
        (429, None, lambda e: isinstance(e, RateLimited) and e.problem == "minute" and e.retry_after == 2),
        (500, {"Message": "oops"}, lambda e: isinstance(e, TransientProviderError)),
    ],
)
def test_xero_error_mapping(status: int, body: object, check: Callable[[ProviderError], bool]) -> None:
    headers = {"Retry-After": "2", "X-Rate-Limit-Problem": "minute"} if status == 429 else None
    error = xero_error(response(status, body, headers))
    assert error is not None
    assert check(error), repr(error)
    assert error.provider == "xero"
    assert error.status == status
