"""The sync core stores what stopped a run as a kind; every kind has its own words (cards.failure_words)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from bot.errors import (
    AuthError,
    NotFound,
    PermissionDenied,
    Problem,
    ProviderError,
    RateLimited,
    StoreError,
    TransientProviderError,
    ValidationFailed,
)
from bot.storage.base import (
    EntityCounts,
    FailureKind,
    Provider,
    RecordRefusal,
    RunOutcome,
    RunRecord,
    RunTrigger,
)
from bot.sync.failures import describe
from bot.sync.records import outcome_data
from bot.sync.xero_errors import xero_error
from cards.failure_words import (
    connector_outcome_words,
    record_refusal_words,
    run_error_words,
    run_failure_words,
)
from cards.problem_words import error_words, problem_words

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_every_kind_has_its_own_words() -> None:
    generic = run_failure_words(FailureKind.PROVIDER_ERROR, "xero", "boom")
    worded = {kind: run_failure_words(kind, "xero", "boom", "500") for kind in FailureKind}
    assert all(
        words and words != generic for kind, words in worded.items() if kind is not FailureKind.PROVIDER_ERROR
    )
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
    assert (
        record_refusal_words(RecordRefusal.REJECTED, "") == "Dataverse rejected the record: no reason given"
    )
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
    # The Connector row in Dynamics gets the same words; a core composed without them, a data line.
    assert connector_outcome_words(run) == run_error_words(run)
    assert outcome_data(run) == "failed: no_answer [xero, 503]: Service Unavailable"
    old = run.model_copy(update={"failure_kind": None, "error": "Stored before kinds."})
    assert run_error_words(old) == "Stored before kinds."
    assert outcome_data(old) == connector_outcome_words(old) == "Stored before kinds."


def test_the_alert_words_come_from_the_kind_or_the_stored_text() -> None:
    from bot.sync.ports import AttentionDetail, AttentionReason
    from bot.teams.attention_words import attention_words

    kind = AttentionDetail(failure_kind=FailureKind.SIGN_IN_INVALID, provider="dynamics")
    assert attention_words(AttentionReason.DYNAMICS_RECONNECT, kind).startswith(
        "The Dynamics 365 sign-in is no"
    )
    old = AttentionDetail(error="Stored before kinds.", failed_runs=3)
    assert (
        attention_words(AttentionReason.REPEATED_FAILURES, old)
        == "The last 3 runs failed: Stored before kinds."
    )
    assert attention_words(AttentionReason.XERO_RECONNECT, AttentionDetail()) == ""


def test_a_run_that_wrote_is_counted_in_words_on_the_connector_row() -> None:
    run = RunRecord(
        id="r",
        connection_id="c",
        trigger=RunTrigger.SCHEDULE,
        started_at=T0,
        outcome=RunOutcome.PARTIAL,
        counts={"accounts": EntityCounts(created=1, failed=2), "tax_rates": EntityCounts()},
    )
    assert connector_outcome_words(run) == "1 change written, 2 records failed (see the run's card in Teams)."
    assert outcome_data(run) == "changed=1 failed=2"


def test_every_problem_of_ours_has_its_own_words() -> None:
    worded = {problem: problem_words(ProviderError(problem, provider="xero")) for problem in Problem}
    assert len(set(worded.values())) == len(Problem)
    assert all(text[0].isupper() and not text.endswith(".") for text in worded.values())
    assert all("_" not in text for text in worded.values()), worded  # no code shown as if it were words


def test_provider_errors_are_worded_from_their_type_code_status_and_own_words() -> None:
    assert problem_words(
        PermissionDenied(
            "0x80040220",
            provider="dynamics",
            status=403,
            detail="Principal user 'x' is missing prvReadxdc_Connector privilege",
        )
    ) == (
        "Dynamics 365 denied access (403, 0x80040220): Principal user '…' is missing prvReadxdc_Connector privilege"
    )
    assert problem_words(
        AuthError("invalid_grant", provider="xero", status=400, reconnect_required=True)
    ) == ("Xero no longer accepts this connection's sign-in (400); connect Xero again")
    assert problem_words(
        TransientProviderError("ConnectTimeout", provider="dynamics", where="GET xdc_accounts")
    ) == ("Dynamics 365 did not answer (ConnectTimeout)")
    assert (
        problem_words(NotFound(provider="xero", status=404)) == "Xero could not find what we asked for (404)"
    )
    assert problem_words(RateLimited(Problem.DAY_BUDGET, retry_after=60, provider="xero")) == (
        "Xero's daily API allowance for this organisation is nearly used up; try again in about 60 seconds"
    )
    assert problem_words(NotFound(Problem.CONNECTION_GONE)) == "This connection no longer exists"


def test_error_words_leave_sentences_meant_for_people_as_they_are() -> None:
    assert error_words(ValidationFailed("Choose a plan.")) == "Choose a plan"
    assert (
        error_words(StoreError("SQLite store failed: disk I/O error"))
        == "The connector's own storage did not answer"
    )
    assert error_words(ProviderError(Problem.NO_ROW_ID, provider="dynamics", where="xdc_connector")) == (
        "Dynamics 365 did not say which row it wrote"
    )


def test_the_log_line_of_an_error_is_data_not_a_sentence() -> None:
    error = ProviderError(
        "ValidationException",
        provider="xero",
        status=400,
        detail="A validation exception occurred",
        where="Accounts",
    )
    assert str(error) == "xero 400 ValidationException (Accounts): A validation exception occurred"
    assert str(RateLimited(Problem.PAUSED, retry_after=90, provider="xero", status=429, where="minute")) == (
        "xero 429 paused (minute) [retry after 90 s]"
    )


def test_the_words_read_as_sentences_whatever_the_provider_sent() -> None:
    """Issue 16's review: no empty parentheses, no double stops, no code repeated as its own message, no
    status for a success, and the explanation a code has is said."""
    for kind in (FailureKind.ACCESS_REFUSED, FailureKind.TABLES_NOT_FOUND, FailureKind.PROVIDER_ERROR):
        text = run_failure_words(kind, "dynamics", "", "")
        assert "()" not in text, text
        assert ".." not in text, text
        assert text.endswith((".", "?")), text
    assert run_failure_words(FailureKind.PROVIDER_ERROR, "xero") == "Xero answered with an error; the next run tries again."

    unique = ProviderError("0x80040237", provider="dynamics", status=400, detail="A record with these values already exists.")
    assert f"{error_words(unique)}. Nothing was changed." == (
        "Dynamics 365 answered with an error (400, 0x80040237): A record with these values already exists. "
        "Nothing was changed."
    )
    # Through Xero's own mapper: its Detail leads with the code, which is not said twice.
    forbidden = xero_error(httpx.Response(403, json={"Type": None, "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}))
    assert isinstance(forbidden, PermissionDenied)
    assert problem_words(forbidden) == (
        "Xero says this organisation is disconnected from the app or not covered by this connection (403); "
        "reconnect Xero and choose the organisation again"
    )
    expired = xero_error(httpx.Response(401, json={"Title": "Unauthorized", "Status": 401, "Detail": "TokenExpired: token expired at 12/06/2026 10:00:00"}))
    assert isinstance(expired, AuthError)
    assert problem_words(expired) == "Xero refused our sign-in (401, TokenExpired): token expired at 12/06/2026 10:00:00"
    assert problem_words(ProviderError(Problem.BAD_STATUS, provider="xero", status=200, detail="ERROR")) == (
        "Xero answered with a status other than OK: ERROR"
    )


def test_a_wait_and_the_calls_left_are_said() -> None:
    assert problem_words(RateLimited(Problem.PAUSED, retry_after=120, provider="xero", status=429, where="minute")) == (
        "Xero asked us to wait before calling it again (429); try again in about 2 minutes"
    )
    day = RateLimited(Problem.DAY_BUDGET, retry_after=3600, provider="xero", where="3 calls left")
    assert problem_words(day) == (
        "Xero's daily API allowance for this organisation is nearly used up (3 calls left); try again in about 60 minutes"
    )


def test_an_entra_outage_is_microsofts_sign_in_not_dynamics() -> None:
    outage = TransientProviderError(
        Problem.SIGN_IN_UNAVAILABLE, provider="dynamics", status=503, where="token endpoint: MsalServiceError"
    )
    assert problem_words(outage) == "Microsoft sign-in is temporarily unavailable (503)"
    failure = describe(outage)
    assert failure.kind is FailureKind.NO_ANSWER
    assert failure.code == Problem.SIGN_IN_UNAVAILABLE
    assert run_failure_words(failure.kind, failure.provider, failure.detail, failure.code) == (
        "Microsoft sign-in is temporarily unavailable; the next run tries again."
    )


def test_our_codes_word_a_run_better_than_its_kind() -> None:
    busy = describe(TransientProviderError(Problem.TOKEN_LOCK_BUSY, provider="xero"))
    assert run_failure_words(busy.kind, busy.provider, busy.detail, busy.code) == (
        "Another process kept refreshing this connection's Xero sign-in; the next run tries again."
    )
    no_env = describe(ProviderError(Problem.NO_ENVIRONMENT, provider="dynamics"))
    assert run_failure_words(no_env.kind, no_env.provider, no_env.detail, no_env.code) == (
        "No Dynamics 365 environment is chosen for this connection; reconnect Dynamics 365 and choose an environment."
    )
    # What was asked (`where`) is for the log, never shown as the provider's words.
    unreadable = describe(ProviderError(Problem.BAD_RESPONSE, provider="xero", where="Accounts, text/html"))
    assert unreadable.detail == ""
    assert run_failure_words(unreadable.kind, unreadable.provider, unreadable.detail, unreadable.code) == (
        "Xero sent an answer we could not read; the next run tries again."
    )


def test_a_kind_written_by_a_newer_release_reads_as_unknown() -> None:
    from bot.storage.base import RecordFailure

    run = RunRecord.model_validate(
        {
            "id": "r",
            "connection_id": "c",
            "trigger": "schedule",
            "started_at": T0.isoformat(),
            "outcome": "failed",
            "failure_kind": "from_the_future",
            "attention": "also_new",
            "error": "",
        }
    )
    assert run.failure_kind is None
    assert run.attention is None
    assert connector_outcome_words(run) == "The run failed."
    failure = RecordFailure.model_validate({"entity": "accounts", "key": "k", "reason": "", "refusal": "newer"})
    assert failure.refusal is None
