"""What a failed run or a refused record tells a person: an actionable sentence, with no values quoted.

Run reports are kept in the store, which must hold no financial data, and they are shown in chat. So
every message that came from a provider is scrubbed: quoted text that is not one of our own column or
table names is replaced with `'…'`, and the record's own values (name, code, rate, ...) are removed
wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeGuard

from bot.errors import (
    AuthError,
    NotFound,
    PermissionDenied,
    ProviderError,
    RateLimited,
    StoreError,
    TransientProviderError,
)
from bot.storage.base import Connection, ConnectionStatus, RunRecord
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.sync.tables import ALL_TABLES, SECURITY_ROLE_NAME, SOLUTION_FRIENDLY_NAME

MAX_REASON = 300
REPEATED_FAILURES_AT = 3
_QUOTED = re.compile(r"'([^']*)'|\"([^\"]*)\"")
# Our own names may stay in a message: they are what tells a person which column was refused.
_OUR_NAMES = frozenset(
    {t.logical_name for t in ALL_TABLES}
    | {t.entity_set for t in ALL_TABLES}
    | {c.name for t in ALL_TABLES for c in t.columns}
)
_MIN_SCRUBBED = 2  # one character values (a sort order "0") would blank out ordinary text


def scrub(message: str, values: Iterable[str] = ()) -> str:
    """The message without quoted values and without any of `values`, cut to one short line."""

    def keep_ours(match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        return match.group(0) if inner in _OUR_NAMES else "'…'"

    text = _QUOTED.sub(keep_ours, message)
    for value in sorted({v for v in values if len(v) >= _MIN_SCRUBBED}, key=len, reverse=True):
        text = re.sub(re.escape(value), "…", text, flags=re.IGNORECASE)
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


def record_reason(error: str, status: int | None, values: Iterable[str]) -> str:
    """Why Dataverse refused one record, as shown in the run report."""
    detail = scrub(error or "no reason given", values)
    if status == 403:
        return f"Dynamics 365 refused the write (missing privilege): {detail}"
    if status == 412:
        return f"Dataverse refused the write (the row changed meanwhile): {detail}"
    return f"Dataverse rejected the record: {detail}"


def provider_name(provider: str) -> str:
    return "Xero" if provider == "xero" else "Dynamics 365" if provider else "A provider"


@dataclass(frozen=True)
class RunFailure:
    """A run that could not complete: the sentence for the report, and what follows from it."""

    error: str
    attention: AttentionReason | None = None
    status: ConnectionStatus | None = None  # the connection's new status, if it changes
    expected: bool = True  # False: a bug worth a stack trace in the log
    provider: str = ""  # "xero", "dynamics" or "" (not a provider's doing)


def describe(exc: BaseException) -> RunFailure:
    """Translate what stopped a run into a sentence a person can act on."""
    if isinstance(exc, ProviderError):
        return _provider_failure(exc)
    if isinstance(exc, StoreError):
        return RunFailure("The connector's own storage did not answer; the next run tries again.")
    return RunFailure(
        f"An unexpected error stopped the run ({type(exc).__name__}); the next run tries again.",
        expected=False,
    )


def _provider_failure(exc: ProviderError) -> RunFailure:
    failure = _translate(exc)
    return RunFailure(failure.error, failure.attention, failure.status, failure.expected, exc.provider)


def _translate(exc: ProviderError) -> RunFailure:
    name = provider_name(exc.provider)
    xero = exc.provider == "xero"
    detail = scrub(str(exc))
    if isinstance(exc, AuthError):
        if exc.reconnect_required:
            return RunFailure(
                f"The {name} sign-in is no longer valid (expired, revoked or missing a permission). "
                f"Reconnect {name} to resume syncing.",
                AttentionReason.XERO_RECONNECT if xero else AttentionReason.DYNAMICS_RECONNECT,
                ConnectionStatus.NEEDS_RECONNECTION,
            )
        return RunFailure(
            f"{name} refused our sign-in ({exc.code or exc.status or 'unauthorised'}); the next run tries "
            f"again. If this repeats, reconnect {name}."
        )
    if isinstance(exc, PermissionDenied):
        if xero:
            return RunFailure(
                "Xero says this organisation is no longer connected to the app (it was disconnected, "
                "deleted or its subscription ended). Reconnect Xero and choose the organisation again.",
                AttentionReason.TENANT_DISCONNECTED,
                ConnectionStatus.NEEDS_RECONNECTION,
            )
        return RunFailure(
            f"Dynamics 365 refused access: give the connecting user the '{SECURITY_ROLE_NAME}' security "
            f"role, then run the sync again. ({detail})"
        )
    if isinstance(exc, RateLimited):
        if xero and exc.problem == "day":
            return RunFailure(
                "Xero's daily API allowance for this organisation is (nearly) used up; syncing resumes "
                "when it resets.",
                AttentionReason.XERO_DAILY_LIMIT,
            )
        return RunFailure(f"{name} is limiting how fast we may call it; the next run tries again.")
    if isinstance(exc, TransientProviderError):
        what = exc.status or exc.code or "no answer"
        return RunFailure(f"{name} did not answer after several tries ({what}); the next run tries again.")
    if isinstance(exc, NotFound):
        if xero:
            return RunFailure(
                "Xero could not find this organisation. Reconnect Xero and choose the organisation again.",
                AttentionReason.TENANT_DISCONNECTED,
                ConnectionStatus.NEEDS_RECONNECTION,
            )
        return RunFailure(
            f"Dynamics 365 could not find the connector's tables: is the '{SOLUTION_FRIENDLY_NAME}' "
            f"solution installed in this environment? ({detail})"
        )
    return RunFailure(f"{name} answered with an error: {detail}")


def xero_sign_in_refused(failure: RunFailure | None, after: Connection) -> TypeGuard[RunFailure]:
    """The run has just marked the connection for a Xero reconnect because Xero refused its sign-in."""
    return (
        failure is not None
        and failure.attention is AttentionReason.XERO_RECONNECT
        and after.status is ConnectionStatus.NEEDS_RECONNECTION
        and after.status_reason == failure.error
    )


def sign_in_replaced(failure: RunFailure) -> RunFailure:
    """The run's sign-in was refused, but the connection got new tokens while it ran (a reconnect): the
    refusal is about a sign-in that is gone, so nobody is asked to reconnect again."""
    return RunFailure(
        f"{provider_name(failure.provider)} refused the sign-in this run started with, but it was replaced "
        "while the run went on (reconnected); the next run uses the new one.",
        provider=failure.provider,
    )


def unmark(reason: str, next_run: datetime | None, now: datetime) -> Callable[[Connection], Connection]:
    """Undo a run's "needs reconnection" (with `reason`) unless something else changed the status since."""

    def apply(c: Connection) -> Connection:
        if c.status is not ConnectionStatus.NEEDS_RECONNECTION or c.status_reason != reason:
            return c
        update = {
            "status": ConnectionStatus.ACTIVE,
            "status_reason": "",
            "next_run_at": next_run,
            "updated_at": now,
        }
        return c.model_copy(update=update)

    return apply


def attention_after_run(
    before: Connection,
    after: Connection,
    record: RunRecord,
    failure: RunFailure | None,
    day_limit_warning: int,
) -> list[tuple[AttentionReason, AttentionDetail]]:
    """What a finished run asks a person to look at. Each condition is reported when it starts, not on
    every run while it lasts (the third failure in a row, the day budget crossing the warning line).
    Reasons and data only: `bot.teams` writes the sentences."""
    reasons: list[tuple[AttentionReason, AttentionDetail]] = []
    if failure is not None and failure.attention is not None:
        reasons.append((failure.attention, AttentionDetail(error=failure.error)))
    if after.consecutive_failures == REPEATED_FAILURES_AT > before.consecutive_failures:
        reasons.append(
            (
                AttentionReason.REPEATED_FAILURES,
                AttentionDetail(error=record.error, failed_runs=REPEATED_FAILURES_AT),
            )
        )
    remaining, was = record.xero_day_remaining, before.xero_day_remaining
    if (
        remaining is not None
        and remaining < day_limit_warning
        and (was is None or was >= day_limit_warning)
        and all(reason is not AttentionReason.XERO_DAILY_LIMIT for reason, _ in reasons)
    ):
        reasons.append((AttentionReason.XERO_DAILY_LIMIT, AttentionDetail(calls_left=remaining)))
    if before.xero_timezone and after.xero_timezone and before.xero_timezone != after.xero_timezone:
        reasons.append(
            (
                AttentionReason.TIMEZONE_MISMATCH,
                AttentionDetail(timezone_from=before.xero_timezone, timezone_to=after.xero_timezone),
            )
        )
    return reasons
