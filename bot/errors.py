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

Providers' HTTP statuses are mapped to these once, in `bot/sync/xero.py` and `bot/sync/dataverse.py`.
"""

from __future__ import annotations


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


class ProviderError(ConnectorError):
    """A call to Xero, Entra ID or Dataverse failed."""

    def __init__(self, message: str, *, provider: str = "", status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code


class RateLimited(ProviderError):
    def __init__(self, message: str, *, retry_after: float, problem: str = "", **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.problem = problem


class TransientProviderError(ProviderError):
    """A failure worth retrying: 5xx, timeouts, dropped connections."""


class AuthError(ProviderError):
    def __init__(self, message: str, *, reconnect_required: bool = False, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.reconnect_required = reconnect_required


class PermissionDenied(ProviderError):
    """Authenticated, but not allowed (Dataverse PrivilegeDenied, Xero tenant not covered)."""


class NotFound(ProviderError):
    pass


class OAuthFlowError(ConnectorError):
    """A sign-in flow that cannot complete. `reason` is a stable name for the page and the chat."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
