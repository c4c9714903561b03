"""The words for what stopped a run and why a record was refused: the sync core stores kinds and data
(`FailureKind`, `RecordRefusal`, the provider, its scrubbed message, its code); the cards, the run
watcher and the alerts all word them here, so a person reads the same sentence everywhere.

Runs and records stored before the kinds existed carry their sentence in `error` / `reason`: shown as is.
"""

from __future__ import annotations

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
from bot.storage.base import FailureKind, RecordFailure, RecordRefusal, RunOutcome, RunRecord
from bot.sync.failures import scrub
from bot.sync.tables import SECURITY_ROLE_NAME, SOLUTION_FRIENDLY_NAME


def provider_name(provider: str) -> str:
    return "Xero" if provider == "xero" else "Dynamics 365" if provider else "A provider"


# What each code means, as a phrase to build a sentence around ({name}: the provider's name). Our own
# `Problem`s, and the providers' codes whose meaning we know whatever the status.
_PHRASES: dict[str, str] = {
    Problem.BAD_RESPONSE: "{name} sent an answer we could not read",
    Problem.BAD_STATUS: "{name} answered with a status other than OK",
    Problem.BAD_TOKEN_RESPONSE: "{name}'s sign-in service answered without a usable token",
    Problem.MISSING_REFRESH_TOKEN: (
        "Xero sent no refresh token (was offline access granted?); connect Xero again"
    ),
    Problem.NO_TOKENS: "this connection has no {name} sign-in; connect {name} again",
    Problem.TOKENS_REPLACED: "the {name} sign-in was replaced twice while it was being refreshed; try again",
    Problem.TOKEN_LOCK_BUSY: "another process is still refreshing this connection's {name} sign-in",
    Problem.NO_ROW_ID: "Dynamics 365 did not say which row it wrote",
    Problem.NO_ORGANISATION: "Xero returned no organisation for this connection",
    Problem.NO_ENVIRONMENT: "no Dynamics 365 environment is chosen for this connection",
    Problem.IMPORT_NOT_STARTED: "Dynamics 365 answered without an import operation to follow",
    Problem.RATE_LIMITED: "{name} is limiting how fast we may call it",
    Problem.DAY_BUDGET: "Xero's daily API allowance for this organisation is nearly used up",
    Problem.PAUSED: "Xero asked us to wait before calling it again",
    Problem.CONNECTION_GONE: "this connection no longer exists",
    Problem.NOT_RUN: "Dynamics 365 did not run this write",
    "invalid_grant": "{name} no longer accepts this connection's sign-in; connect {name} again",
    "invalid_client": "{name} rejected the connector's app credentials (its client id or secret)",
    "unauthorized_client": "{name} does not allow the connector's app here",
}


def _phrase_by_type(exc: ProviderError, name: str) -> str:
    if isinstance(exc, AuthError):
        if exc.reconnect_required:
            return f"{name} no longer accepts this connection's sign-in; reconnect {name}"
        return f"{name} refused our sign-in"
    if isinstance(exc, PermissionDenied):
        return f"{name} denied access"
    if isinstance(exc, NotFound):
        return f"{name} could not find what we asked for"
    if isinstance(exc, RateLimited):
        return f"{name} is limiting how fast we may call it"
    if isinstance(exc, TransientProviderError):
        return f"{name} did not answer"
    return f"{name} answered with an error"


def problem_words(exc: ProviderError) -> str:
    """What went wrong with a provider, as one sentence without its full stop, for the chat: from the
    error's code and type, with its status or code and the provider's own (scrubbed) words."""
    name = provider_name(exc.provider)
    known = _PHRASES.get(exc.code)
    text = known.format(name=name) if known else _phrase_by_type(exc, name)
    reference = ", ".join(part for part in (str(exc.status or ""), "" if known else exc.code) if part)
    text += f" ({reference})" if reference else ""
    detail = scrub(exc.detail)
    text += f": {detail}" if detail else ""
    return text[:1].upper() + text[1:]


def error_words(exc: BaseException) -> str:
    """Any error the product raised on purpose, as the chat shows it, without a final full stop (the caller
    goes on): a provider's and the store's in our words; the others (a ValidationFailed, a refusal) are
    raised with the sentence meant for the person already."""
    if isinstance(exc, ProviderError):
        return problem_words(exc)
    if isinstance(exc, StoreError):
        return "The connector's own storage did not answer"
    return str(exc).rstrip(". ")


def run_failure_words(kind: FailureKind | str, provider: str = "", detail: str = "", code: str = "") -> str:
    """The sentence a person reads about what stopped a run: what happened and what to do."""
    name = provider_name(provider)
    if kind == FailureKind.SIGN_IN_INVALID:
        return (
            f"The {name} sign-in is no longer valid (expired, revoked or missing a permission). "
            f"Reconnect {name} to resume syncing."
        )
    if kind == FailureKind.SIGN_IN_REFUSED:
        return (
            f"{name} refused our sign-in ({code or 'unauthorised'}); the next run tries again. "
            f"If this repeats, reconnect {name}."
        )
    if kind == FailureKind.SIGN_IN_REPLACED:
        return (
            f"{name} refused the sign-in this run started with, but it was replaced while the run went on "
            "(reconnected); the next run uses the new one."
        )
    if kind == FailureKind.TENANT_DISCONNECTED:
        return (
            "Xero says this organisation is no longer connected to the app (it was disconnected, "
            "deleted or its subscription ended). Reconnect Xero and choose the organisation again."
        )
    if kind == FailureKind.ACCESS_REFUSED:
        return (
            f"Dynamics 365 refused access: give the connecting user the '{SECURITY_ROLE_NAME}' security "
            f"role, then run the sync again. ({detail})"
        )
    if kind == FailureKind.DAILY_LIMIT:
        return "Xero's daily API allowance for this organisation is (nearly) used up; syncing resumes when it resets."
    if kind == FailureKind.RATE_LIMITED:
        return f"{name} is limiting how fast we may call it; the next run tries again."
    if kind == FailureKind.NO_ANSWER:
        return f"{name} did not answer after several tries ({code or 'no answer'}); the next run tries again."
    if kind == FailureKind.TENANT_NOT_FOUND:
        return "Xero could not find this organisation. Reconnect Xero and choose the organisation again."
    if kind == FailureKind.TABLES_NOT_FOUND:
        return (
            f"Dynamics 365 could not find the connector's tables: is the '{SOLUTION_FRIENDLY_NAME}' "
            f"solution installed in this environment? ({detail})"
        )
    if kind == FailureKind.INTERRUPTED:
        return "The run was interrupted before it finished (its worker stopped); the next run picks it up."
    if kind == FailureKind.STORE_DOWN:
        return "The connector's own storage did not answer; the next run tries again."
    if kind == FailureKind.UNEXPECTED:
        return f"An unexpected error stopped the run ({detail or 'unknown'}); the next run tries again."
    if kind == FailureKind.CONNECTION_INACTIVE:
        why = "no longer exists" if detail == "gone" else f"is {detail.replace('_', ' ')}"
        return f"The connection {why}."
    known = _PHRASES.get(code)
    if known:
        text = known.format(name=name)
        text = text[:1].upper() + text[1:] + (f" ({detail})" if detail else "")
        return f"{text}; the next run tries again."
    return f"{name} answered with an error ({code or 'no code'}): {detail or 'no details'}"


def connector_outcome_words(run: RunRecord) -> str:
    """The line a run leaves on the Connector row in Dynamics 365: why it failed, or what it wrote."""
    if run.outcome == RunOutcome.FAILED:
        return run_error_words(run) or "The run failed."
    changed = sum(c.changed for c in run.counts.values())
    failed = sum(c.failed for c in run.counts.values())
    text = f"{changed} change{'' if changed == 1 else 's'} written"
    if failed:
        text += f", {failed} record{'' if failed == 1 else 's'} failed (see the run's card in Teams)"
    return text + "."


def run_error_words(run: RunRecord) -> str:
    """Why the run failed (or was skipped), in words; "" when it did not. Older runs: their stored text."""
    if run.failure_kind is None:
        return run.error
    return run_failure_words(
        run.failure_kind, run.failed_provider or "", run.failure_detail, run.failure_code
    )


def record_refusal_words(refusal: RecordRefusal | None, reason: str) -> str:
    """Why Dataverse refused one record. Without `refusal` (stored before it existed) `reason` is the sentence."""
    if refusal is None:
        return reason
    detail = reason or "no reason given"
    if refusal is RecordRefusal.PRIVILEGE:
        return f"Dynamics 365 refused the write (missing privilege): {detail}"
    if refusal is RecordRefusal.NOT_RUN:
        return "Dynamics 365 did not run this write (an earlier write in its batch failed); the next run tries again"
    if refusal is RecordRefusal.CHANGED:
        return f"Dataverse refused the write (the row changed meanwhile): {detail}"
    return f"Dataverse rejected the record: {detail}"


def refusal_of(value: str) -> RecordRefusal | None:
    """A stored refusal's name as the enum; None for "" (noted before refusals were kept) or a stranger."""
    try:
        return RecordRefusal(value)
    except ValueError:
        return None


def record_failure_words(failure: RecordFailure) -> str:
    return record_refusal_words(failure.refusal, failure.reason)
