"""The sync core stores what stopped a run as a kind; every kind has its own words (cards.failure_words)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.errors import AuthError, TransientProviderError
from bot.storage.base import FailureKind, Provider, RecordRefusal, RunOutcome, RunRecord, RunTrigger
from bot.sync.failures import describe
from bot.sync.records import outcome_detail
from cards.failure_words import record_refusal_words, run_error_words, run_failure_words

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_every_kind_has_its_own_words() -> None:
    generic = run_failure_words(FailureKind.PROVIDER_ERROR, "xero", "boom")
    worded = {kind: run_failure_words(kind, "xero", "boom", "500") for kind in FailureKind}
    assert all(words and words != generic for kind, words in worded.items() if kind is not FailureKind.PROVIDER_ERROR)
    assert len(set(worded.values())) == len(FailureKind)


def test_the_words_are_those_of_the_failure() -> None:
    revoked = describe(AuthError("invalid_grant", provider="xero", reconnect_required=True))
    assert revoked.kind is FailureKind.SIGN_IN_INVALID
    assert run_failure_words(revoked.kind, revoked.provider) == (
        "The Xero sign-in is no longer valid (expired, revoked or missing a permission). "
        "Reconnect Xero to resume syncing."
    )
    busy = describe(TransientProviderError("down", provider="dynamics", status=503))
    assert run_failure_words(busy.kind, busy.provider, busy.detail, busy.code) == (
        "Dynamics 365 did not answer after several tries (503); the next run tries again."
    )
    assert record_refusal_words(RecordRefusal.REJECTED, "") == "Dataverse rejected the record: no reason given"
    assert record_refusal_words(None, "an older sentence") == "an older sentence"


def test_a_failed_run_is_worded_from_its_kind_or_its_stored_text() -> None:
    run = RunRecord(
        id="r",
        connection_id="c",
        trigger=RunTrigger.SCHEDULE,
        started_at=T0,
        outcome=RunOutcome.FAILED,
        failure_kind=FailureKind.NO_ANSWER,
        failed_provider=Provider.XERO,
        failure_code="503",
        failure_detail="Service Unavailable",
    )
    assert run_error_words(run) == "Xero did not answer after several tries (503); the next run tries again."
    # The Connector row in Dynamics gets a compact form, not a chat sentence.
    assert outcome_detail(run) == "failed: no_answer [xero, 503]: Service Unavailable"
    old = run.model_copy(update={"failure_kind": None, "error": "Stored before kinds."})
    assert run_error_words(old) == "Stored before kinds."
    assert outcome_detail(old) == "Stored before kinds."


def test_the_alert_words_come_from_the_kind_or_the_stored_text() -> None:
    from bot.sync.ports import AttentionDetail, AttentionReason
    from bot.teams.attention_words import attention_words

    kind = AttentionDetail(failure_kind=FailureKind.SIGN_IN_INVALID, provider="dynamics")
    assert attention_words(AttentionReason.DYNAMICS_RECONNECT, kind).startswith("The Dynamics 365 sign-in is no")
    old = AttentionDetail(error="Stored before kinds.", failed_runs=3)
    assert attention_words(AttentionReason.REPEATED_FAILURES, old) == "The last 3 runs failed: Stored before kinds."
    assert attention_words(AttentionReason.XERO_RECONNECT, AttentionDetail()) == ""
