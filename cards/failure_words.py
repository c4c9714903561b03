"""The words for what stopped a run and why a record was refused: the sync core stores kinds and data
(`FailureKind`, `RecordRefusal`, the provider, its scrubbed message, its code); the cards, the run
watcher and the alerts all word them here, so a person reads the same sentence everywhere.

Runs and records stored before the kinds existed carry their sentence in `error` / `reason`: shown as is.
"""

from __future__ import annotations

from bot.storage.base import FailureKind, RecordFailure, RecordRefusal, RunOutcome, RunRecord
from bot.sync.tables import SECURITY_ROLE_NAME, SOLUTION_FRIENDLY_NAME
from cards.formatting import total_counts
from cards.problem_words import PHRASES, provider_name, sentence

# Kinds whose words come from the code when the code is one we know (`problem_words.PHRASES`).
_WORDED_BY_CODE = frozenset(
    {FailureKind.SIGN_IN_REFUSED, FailureKind.NO_ANSWER, FailureKind.RATE_LIMITED, FailureKind.PROVIDER_ERROR}
)


def run_failure_words(kind: FailureKind | str, provider: str = "", detail: str = "", code: str = "") -> str:
    """The sentence a person reads about what stopped a run: what happened and what to do."""
    name = provider_name(provider)
    known = PHRASES.get(code)
    said = f" ({detail})" if detail else ""
    if known is not None and kind in _WORDED_BY_CODE:
        # Our own problem, or a provider code we know: its words say more than the kind's.
        words = known.format(name)
        return f"{sentence(words.what)}{said}; {words.todo or 'the next run tries again'}."
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
            f"role, then run the sync again.{said}"
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
            f"solution installed in this environment?{said}"
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
    reference = f" ({code})" if code else ""
    return f"{name} answered with an error{reference}{': ' + detail if detail else ''}; the next run tries again."


def connector_outcome_words(run: RunRecord) -> str:
    """The line a run leaves on the Connector row in Dynamics 365: why it failed, or what it wrote."""
    if run.outcome == RunOutcome.FAILED:
        return run_error_words(run) or "The run failed."
    totals = total_counts(run.counts)
    changed, failed = totals.changed, totals.failed
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
        return "Dynamics 365's answer did not include this write; the next run tries again"
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
