"""The kinds that describe a run (stored with its `RunRecord` in `bot.storage.base`): what started it, how
far it got, whose failure stopped it and what that asks a person to do. String values: stored as is."""

from __future__ import annotations

from enum import StrEnum


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
