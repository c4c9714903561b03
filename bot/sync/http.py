"""Bounded retries for httpx calls, shared by the provider clients (Xero, Dataverse).

One attempt is whatever the caller's `send()` does (acquire a rate-limit slot, send, read headers);
this module decides what is worth another attempt and how long to wait:

- dropped connections and timeouts (`httpx.TransportError`) and 5xx: tenacity's exponential backoff
  with jitter (`RetryPolicy.backoff`);
- 429: exactly `Retry-After` seconds when it is within the caller's cap, else `RateLimited` at once
  (Xero's daily limit answers with a Retry-After of hours: no run should sleep through that);
- anything else the classifier maps to a typed error from `bot.errors` is raised as is.

Requests that are not idempotent (an authorization-code exchange) are retried only when the request
provably never reached the server (connect failures) or was refused by a rate limiter (429).
Sleeping is injectable so tests can record the waits instead of spending them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from tenacity.wait import wait_base

from bot import metrics
from bot.errors import (
    AuthError,
    NotFound,
    PermissionDenied,
    Problem,
    ProviderError,
    RateLimited,
    TransientProviderError,
)
from bot.sync.clock import Sleep, asyncio_sleep

logger = logging.getLogger(__name__)

Classifier = Callable[[httpx.Response], ProviderError | None]

# Failures where the request never left this process: safe to retry even when not idempotent.
_NOT_SENT: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. `max_retry_after` caps the Retry-After we are willing to sleep through."""

    attempts: int = 5
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    sleep: Sleep = field(default=asyncio_sleep, compare=False)

    def backoff(self) -> wait_base:
        """tenacity's wait before retry n (1-based) after a transient failure: `backoff_initial * 2**(n-1)`,
        at most `backoff_max`, plus up to `jitter` seconds at random."""
        return wait_exponential(multiplier=self.backoff_initial, max=self.backoff_max) + wait_random(
            0, self.jitter
        )


class _NotRetryable(TransientProviderError):
    """A transient failure of a non-idempotent request that may have reached the server."""


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date. None if absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def error_for_status(
    response: httpx.Response, *, provider: str, detail: str = "", code: str = ""
) -> ProviderError | None:
    """The typed error for a response, or None when it succeeded (2xx, 3xx).

    Provider clients call this after picking `detail` and `code` out of their own error bodies."""
    status = response.status_code
    if status < 400:
        return None
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return RateLimited(
            code or Problem.RATE_LIMITED,
            retry_after=retry_after if retry_after is not None else 0.0,
            problem=response.headers.get("X-Rate-Limit-Problem", ""),
            provider=provider,
            status=status,
            detail=detail,
        )
    if status >= 500 or status == 408:
        return TransientProviderError(code, provider=provider, status=status, detail=detail)
    if status == 401:
        return AuthError(code, provider=provider, status=status, detail=detail)
    if status == 403:
        return PermissionDenied(code, provider=provider, status=status, detail=detail)
    if status == 404:
        return NotFound(code, provider=provider, status=status, detail=detail)
    return ProviderError(code, provider=provider, status=status, detail=detail)


def default_classifier(provider: str) -> Classifier:
    def classify(response: httpx.Response) -> ProviderError | None:
        return error_for_status(response, provider=provider)

    return classify


async def send_with_retry(
    send: Callable[[], Awaitable[httpx.Response]],
    *,
    provider: str,
    policy: RetryPolicy | None = None,
    classify: Classifier | None = None,
    idempotent: bool = True,
) -> httpx.Response:
    """Call `send()` until it returns a response `classify` accepts (None), within `policy`.

    Raises the typed error of the last attempt: RateLimited, TransientProviderError, AuthError, ...
    """
    pol = policy or RetryPolicy()
    check = classify or default_classifier(provider)

    async def attempt() -> httpx.Response:
        try:
            response = await send()
        except httpx.TransportError as exc:
            metrics.provider_call(provider, None)
            name = type(exc).__name__
            where = f"{exc.request.method} {exc.request.url.path}"
            if not idempotent and not isinstance(exc, _NOT_SENT):
                raise _NotRetryable(name, provider=provider, where=where) from exc
            raise TransientProviderError(name, provider=provider, where=where) from exc
        metrics.provider_call(provider, response.status_code)
        error = check(response)
        if error is None:
            return response
        if not idempotent and isinstance(error, TransientProviderError):
            raise _NotRetryable(
                error.code, provider=provider, status=error.status, detail=error.detail, where=error.where
            )
        raise error

    def should_retry(exc: BaseException) -> bool:
        if isinstance(exc, RateLimited):
            return exc.retry_after <= pol.max_retry_after
        return isinstance(exc, TransientProviderError) and not isinstance(exc, _NotRetryable)

    backoff = pol.backoff()

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, RateLimited) and exc.retry_after > 0:
            return exc.retry_after
        return float(backoff(state))

    def log_retry(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s call failed (%s), attempt %d of %d, retrying in %.1fs",
            provider,
            type(exc).__name__ if exc else "?",
            state.attempt_number,
            pol.attempts,
            delay,
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(pol.attempts),
        wait=wait,
        retry=retry_if_exception(should_retry),
        sleep=pol.sleep,
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        return await retrying(attempt)
    except _NotRetryable as exc:
        # Surface the public type only.
        public = TransientProviderError(
            exc.code, provider=exc.provider, status=exc.status, detail=exc.detail, where=exc.where
        )
        raise public from (exc.__cause__ or exc)
