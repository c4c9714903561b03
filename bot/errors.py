"""The product's error hierarchy.

    ConnectorError                      every error the product raises on purpose
    ├── ConfigError                     a bad setting; the entry points print it and exit 2
    ├── StoreError                      the store is unreachable or returned something unreadable
    │   └── ConcurrencyError            an optimistic write lost (eTag / version mismatch)
    ├── ValidationFailed                user input (card submit, command) that does not validate;
    │                                   `.field_errors` maps an input id to a message for the card
    ├── ProviderError                   a call to Xero or Dataverse failed after retries
    │   ├── RateLimited                 429; `.retry_after` seconds, `.problem` (minute, day, ...)
    │   ├── TransientProviderError      5xx, timeout, dropped connection: retried before it surfaces
    │   ├── AuthError                   401/invalid_grant: `.reconnect_required` tells whether the
    │   │                               user has to sign in again (the connection needs attention)
    │   ├── PermissionDenied            403 from Dataverse (PrivilegeDenied) or a Xero tenant the
    │   │                               token does not cover (AuthenticationUnsuccessful)
    │   └── NotFound                    404 from either side
    └── OAuthFlowError                  a sign-in that cannot complete; `.reason` names why
                                        (invalid_state, expired_state, access_denied, wrong_user, ...)

Providers' HTTP statuses are mapped to these once, in `bot/sync/xero_errors.py` and
`bot/sync/dataverse_errors.py`. They carry codes and the providers' own messages, never our sentences: the
words are written where a person reads them (`cards.failure_words`).
"""

from __future__ import annotations

from enum import StrEnum


class ConnectorError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(ConnectorError):
    """A setting is missing or invalid. The message is one line that names the variable."""


class StoreError(ConnectorError):
    """The store failed."""


class ConcurrencyError(StoreError):
    """An optimistic write lost against a newer version."""


class ValidationFailed(ConnectorError):
    """User input did not validate. `field_errors` maps input ids to messages shown next to them."""

    def __init__(self, message: str, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.field_errors: dict[str, str] = dict(field_errors or {})


class Problem(StrEnum):
    """Our own names for what went wrong, for a `ProviderError` whose provider gave no code of its own.

    A provider's own code (`invalid_grant`, `0x80040220`, `AuthorizationUnsuccessful`) is kept as given;
    these name the failures we detect ourselves. The words for each are written outside the sync core
    (`cards.failure_words.problem_words`)."""

    BAD_RESPONSE = "bad_response"  # an answer we could not read (not JSON, wrong shape, broken $batch)
    BAD_STATUS = "bad_status"  # Xero's body said Status other than OK
    BAD_TOKEN_RESPONSE = "bad_token_response"  # a token endpoint's answer without a usable token
    MISSING_REFRESH_TOKEN = "missing_refresh_token"  # Xero sent no refresh token (no offline_access)
    NO_TOKENS = "no_tokens"  # the connection has no stored sign-in for this provider
    TOKENS_REPLACED = "tokens_replaced"  # the sign-in was replaced twice during one refresh
    TOKEN_LOCK_BUSY = "token_lock_busy"  # another process kept refreshing the sign-in
    SIGN_IN_UNAVAILABLE = "sign_in_unavailable"  # Microsoft's token endpoint unreachable or answering 5xx
    NO_ROW_ID = "no_row_id"  # Dataverse did not say which row it wrote
    NO_ORGANISATION = "no_organisation"  # Xero returned no organisation for the tenant
    NO_ENVIRONMENT = "no_env"  # the connection has no Dynamics 365 environment
    IMPORT_NOT_STARTED = "import_not_started"  # ImportSolutionAsync answered without an operation id
    RATE_LIMITED = "rate_limited"  # a 429 without a code of the provider's
    DAY_BUDGET = "day_budget"  # our reserve of Xero's daily allowance is reached
    PAUSED = "paused"  # Xero told us to wait longer than we wait in a run
    CONNECTION_GONE = "connection_gone"  # the connection was removed meanwhile
    NOT_RUN = "not_run"  # one write of a $batch that Dataverse never ran (its answer is missing)


class ProviderError(ConnectorError):
    """A call to Xero, Entra ID or Dataverse failed: data, not words.

    - `code`: the provider's own error code when it gave one, else a `Problem`;
    - `status`: the HTTP status, if there was an answer;
    - `detail`: the provider's own message, verbatim (scrubbed before it is stored or shown);
    - `where`: what was asked (`GET Accounts`, a table name), for the log and the words.

    `str(exc)` is a compact diagnostic for the log (`xero 400 ValidationException (Accounts): ...`); what a
    person reads is written from the fields by `cards.failure_words.problem_words`."""

    def __init__(
        self,
        code: str = "",
        *,
        provider: str = "",
        status: int | None = None,
        detail: str = "",
        where: str = "",
    ) -> None:
        self.provider = provider
        self.status = status
        self.code = str(code)
        self.detail = detail
        self.where = where
        super().__init__(self.diagnostic())

    def diagnostic(self) -> str:
        head = " ".join(
            part for part in (self.provider or "provider", str(self.status or ""), self.code) if part
        )
        head += f" ({self.where})" if self.where else ""
        return head + (f": {self.detail}" if self.detail else "")


class RateLimited(ProviderError):
    def __init__(self, code: str = "", *, retry_after: float, problem: str = "", **kw: object) -> None:
        self.retry_after = retry_after
        self.problem = problem
        super().__init__(code, **kw)  # type: ignore[arg-type]

    def diagnostic(self) -> str:
        return super().diagnostic() + f" [retry after {self.retry_after:.0f} s]"


class TransientProviderError(ProviderError):
    """A failure worth retrying: 5xx, timeouts, dropped connections."""


class AuthError(ProviderError):
    def __init__(self, code: str = "", *, reconnect_required: bool = False, **kw: object) -> None:
        self.reconnect_required = reconnect_required
        super().__init__(code, **kw)  # type: ignore[arg-type]


class PermissionDenied(ProviderError):
    """Authenticated, but not allowed (Dataverse PrivilegeDenied, Xero tenant not covered)."""


class NotFound(ProviderError):
    pass


class OAuthFlowError(ConnectorError):
    """A sign-in flow that cannot complete. `reason` is a stable name for the page and the chat."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
