"""What stopped a run or refused a record, as kinds and data (the words: `cards.failure_words`).

Run reports are kept in the store, which must hold no financial data, and they are shown in chat. So
every message that came from a provider is scrubbed: quoted text that is not one of our own column or
table names is replaced with `'…'`, and the record's own values (name, code, rate, ...) are removed
wherever they appear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TypeGuard

from bot.errors import (
    AuthError,
    NotFound,
    PermissionDenied,
    Problem,
    ProviderError,
    RateLimited,
    StoreError,
    TransientProviderError,
)
from bot.storage.base import Connection, ConnectionStatus, FailureKind, RecordRefusal, RunRecord
from bot.sync.ports import AttentionDetail, AttentionReason
from bot.sync.tables import ALL_TABLES

MAX_REASON = 300
_PROBLEMS = frozenset(Problem)
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


def record_refusal(
    error: str, status: int | None, values: Iterable[str], code: str = ""
) -> tuple[RecordRefusal, str]:
    """Why Dataverse refused one record, and its message scrubbed (worded by `cards.failure_words`)."""
    detail = scrub(error, values) if error else ""
    if code == Problem.NOT_RUN:
        return RecordRefusal.NOT_RUN, detail
    if status == 403:
        return RecordRefusal.PRIVILEGE, detail
    if status == 412:
        return RecordRefusal.CHANGED, detail
    return RecordRefusal.REJECTED, detail


@dataclass(frozen=True)
class RunFailure:
    """A run that could not complete: what stopped it, as data, and what follows from it. The words are
    written outside the sync core (`cards.failure_words.run_failure_words`)."""

    kind: FailureKind
    attention: AttentionReason | None = None
    status: ConnectionStatus | None = None  # the connection's new status, if it changes
    expected: bool = True  # False: a bug worth a stack trace in the log
    provider: str = ""  # "xero", "dynamics" or "" (not a provider's doing)
    detail: str = ""  # the provider's message, scrubbed; the exception's class name for UNEXPECTED
    code: str = ""  # the provider's status or error code, if it gave one


def record_fields(failure: RunFailure | None) -> dict[str, object]:
    """The failure's fields on the run record (cleared when the run did not fail)."""
    if failure is None:
        return {"failure_kind": None, "failure_detail": "", "failure_code": "", "attention": None}
    return {
        "failure_kind": failure.kind,
        "failure_detail": failure.detail,
        "failure_code": failure.code,
        "attention": failure.attention,
    }


def describe(exc: BaseException) -> RunFailure:
    """What stopped a run, as a kind with its data."""
    if isinstance(exc, ProviderError):
        return _translate(exc)
    if isinstance(exc, StoreError):
        return RunFailure(FailureKind.STORE_DOWN)
    return RunFailure(FailureKind.UNEXPECTED, expected=False, detail=type(exc).__name__)


def _translate(exc: ProviderError) -> RunFailure:
    xero = exc.provider == "xero"
    # The provider's own words (scrubbed), never a sentence of ours; `where` stays in the log.
    detail, code = scrub(exc.detail), str(exc.code or exc.status or "")
    hold = ConnectionStatus.NEEDS_RECONNECTION

    def failure(
        kind: FailureKind, attention: AttentionReason | None = None, status: ConnectionStatus | None = None
    ) -> RunFailure:
        return RunFailure(kind, attention, status, provider=exc.provider, detail=detail, code=code)

    if isinstance(exc, AuthError):
        if exc.reconnect_required:
            reason = AttentionReason.XERO_RECONNECT if xero else AttentionReason.DYNAMICS_RECONNECT
            return failure(FailureKind.SIGN_IN_INVALID, reason, hold)
        return failure(FailureKind.SIGN_IN_REFUSED)
    if isinstance(exc, PermissionDenied):
        if xero:
            return failure(FailureKind.TENANT_DISCONNECTED, AttentionReason.TENANT_DISCONNECTED, hold)
        return failure(FailureKind.ACCESS_REFUSED)
    if isinstance(exc, RateLimited):
        if xero and exc.problem == "day":
            return failure(FailureKind.DAILY_LIMIT, AttentionReason.XERO_DAILY_LIMIT)
        return failure(FailureKind.RATE_LIMITED)
    if isinstance(exc, TransientProviderError):
        # Our own problem by its name (worded as such); else the HTTP status first: "did not answer (503)".
        code = exc.code if exc.code in _PROBLEMS else str(exc.status or exc.code or "")
        return failure(FailureKind.NO_ANSWER)
    if isinstance(exc, NotFound):
        if xero:
            return failure(FailureKind.TENANT_NOT_FOUND, AttentionReason.TENANT_DISCONNECTED, hold)
        return failure(FailureKind.TABLES_NOT_FOUND)
    return failure(FailureKind.PROVIDER_ERROR)


def xero_sign_in_refused(failure: RunFailure | None, after: Connection) -> TypeGuard[RunFailure]:
    """The run has just marked the connection for a Xero reconnect because Xero refused its sign-in."""
    return (
        failure is not None
        and failure.attention is AttentionReason.XERO_RECONNECT
        and after.status is ConnectionStatus.NEEDS_RECONNECTION
        and after.status_reason == failure.kind
    )


def sign_in_replaced(failure: RunFailure) -> RunFailure:
    """The run's sign-in was refused, but the connection got new tokens while it ran (a reconnect): the
    refusal is about a sign-in that is gone, so nobody is asked to reconnect again."""
    return RunFailure(FailureKind.SIGN_IN_REPLACED, provider=failure.provider, code=failure.code)


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
        reasons.append((failure.attention, record_detail(record)))
    if after.consecutive_failures == REPEATED_FAILURES_AT > before.consecutive_failures:
        reasons.append(
            (
                AttentionReason.REPEATED_FAILURES,
                replace(record_detail(record), failed_runs=REPEATED_FAILURES_AT),
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


def record_detail(record: RunRecord) -> AttentionDetail:
    """A stored run's failure as the alert carries it; a run stored before the kinds existed by its text."""
    if record.failure_kind is None:
        return AttentionDetail(error=record.error)
    return AttentionDetail(
        failure_kind=record.failure_kind,
        provider=record.failed_provider or "",
        detail=record.failure_detail,
        code=record.failure_code,
    )
