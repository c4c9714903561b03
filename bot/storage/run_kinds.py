"""The kinds that describe a run (stored with its `RunRecord` in `bot.storage.base`): what started it, how
far it got, whose failure stopped it and what that asks a person to do. String values: stored as is."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated

from pydantic import BeforeValidator


class RunTrigger(StrEnum):
    """What started a run (stored with it; the cards word it)."""

    SETUP = "setup"  # the connection's first run
    SCHEDULE = "schedule"
    ON_DEMAND = "on_demand"


class RunStage(StrEnum):
    """A run's progress as reported to the notifier, in this order."""

    READ_XERO = "read_xero"
    WROTE_ACCOUNTS = "wrote_accounts"
    WROTE_TAX_RATES = "wrote_tax_rates"
    WROTE_BRANDING_THEMES = "wrote_branding_themes"
    WROTE_TRACKING = "wrote_tracking"  # categories and their options


class Provider(StrEnum):
    """A service the connector signs in to (the values match `ProviderError.provider`)."""

    XERO = "xero"
    DYNAMICS = "dynamics"


class AttentionReason(StrEnum):
    """Why a person has to act; stored on a failed run so that readers need not parse its error text."""

    XERO_RECONNECT = "xero_reconnect"  # refresh token revoked/expired (invalid_grant)
    DYNAMICS_RECONNECT = "dynamics_reconnect"  # MSAL interaction_required / invalid_grant
    XERO_TOKEN_EXPIRING = "xero_token_expiring"  # refresh token unused for nearly 60 days, not refreshable
    # Entra refresh token inactive for nearly 90 days and the sign-in keeper could not refresh it.
    DYNAMICS_SIGNIN_EXPIRING = "dynamics_signin_expiring"
    REPEATED_FAILURES = "repeated_failures"  # three failed runs in a row
    TIMEZONE_MISMATCH = "timezone_mismatch"
    XERO_DAILY_LIMIT = "xero_daily_limit"  # daily allowance nearly used
    TENANT_DISCONNECTED = "tenant_disconnected"  # Xero 403 AuthenticationUnsuccessful


class FailureKind(StrEnum):
    """What stopped a run, stored with it (`RunRecord.failure_kind`) and as a connection's `status_reason`
    when the run put the connection on hold. The words are written outside the sync core
    (`cards.failure_words`); the provider, the scrubbed detail and the code travel beside the kind."""

    SIGN_IN_INVALID = "sign_in_invalid"  # AuthError that needs a reconnect
    SIGN_IN_REFUSED = "sign_in_refused"  # AuthError worth another try
    SIGN_IN_REPLACED = "sign_in_replaced"  # refused, but a reconnect replaced the sign-in meanwhile
    TENANT_DISCONNECTED = "tenant_disconnected"  # Xero: PermissionDenied
    ACCESS_REFUSED = "access_refused"  # Dynamics: PermissionDenied (the security role)
    DAILY_LIMIT = "daily_limit"  # Xero's day allowance
    RATE_LIMITED = "rate_limited"
    NO_ANSWER = "no_answer"  # TransientProviderError after the retries
    TENANT_NOT_FOUND = "tenant_not_found"  # Xero: NotFound
    TABLES_NOT_FOUND = "tables_not_found"  # Dynamics: NotFound (the solution)
    PROVIDER_ERROR = "provider_error"  # any other ProviderError
    INTERRUPTED = "interrupted"  # the worker stopped mid-run
    STORE_DOWN = "store_down"  # StoreError
    UNEXPECTED = "unexpected"  # a bug: `failure_detail` holds the exception's class name
    CONNECTION_INACTIVE = "connection_inactive"  # skipped: `failure_detail` holds the status, or "gone"


class RecordRefusal(StrEnum):
    """Why Dataverse refused one record (`RecordFailure.refusal`); the words are in `cards.failure_words`."""

    PRIVILEGE = "privilege"  # 403: a missing privilege
    CHANGED = "changed"  # 412: the row changed meanwhile
    REJECTED = "rejected"  # anything else
    NOT_RUN = "not_run"  # never run: its $batch answer had no part for it


def _known(kind: type[StrEnum]) -> Callable[[object], object]:
    def check(value: object) -> object:
        if value is None or isinstance(value, kind):
            return value
        try:
            return kind(str(value))
        except ValueError:
            return None  # written by a newer release: read as "not known", never as an unreadable record

    return check


# The kinds as stored fields: a value this release does not know (a newer release wrote it, during a
# rolling deploy or after a rollback) reads as None instead of making the whole record unreadable.
KnownRefusal = Annotated[RecordRefusal | None, BeforeValidator(_known(RecordRefusal))]
KnownFailureKind = Annotated[FailureKind | None, BeforeValidator(_known(FailureKind))]
KnownAttention = Annotated[AttentionReason | None, BeforeValidator(_known(AttentionReason))]
