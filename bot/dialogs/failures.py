"""Why a sign-in through our OAuth routes stopped: names, not sentences.

The reasons travel from the state store (`oauth_state.StateError`), the steps and the callback routes
to the two edges that speak: the browser page and the setup's chat, which both take their words from
`bot.dialogs.wording`. A `StrEnum`, so a reason is also the stable string the log and the tests see.
"""

from __future__ import annotations

from enum import StrEnum


class SigninFailure(StrEnum):
    INVALID_STATE = "invalid_state"  # a link or state we never issued, or one that does not parse
    EXPIRED_STATE = "expired_state"  # issued, unused, past its 10 minutes
    REPLAYED_STATE = "replayed_state"  # issued and already used (a reload of the callback, a replay)
    LINK_REPLACED = "link_replaced"  # a newer link of the same setup made this one stale
    SETUP_GONE = "setup_gone"  # the setup finished, was cancelled or waits for something else
    ACCESS_DENIED = "access_denied"  # the person declined at the provider
    OTHER_BROWSER = "other_browser"  # the callback came to a browser without the start's cookie
    SIGNIN_BUSY = "signin_busy"  # another browser's sign-in through this link is under way
    TOO_MANY = "too_many"  # the link was opened more than MAX_STARTS_PER_LINK times
    CODE_PENDING = "code_pending"  # an earlier sign-in through the link still waits for its code
    PROVIDER_ERROR = "provider_error"  # the provider refused, or answered in a way we cannot use

    @classmethod
    def of(cls, reason: str) -> SigninFailure:
        """An `OAuthFlowError.reason` as one of ours. The Dynamics sign-in passes on MSAL's own error
        names (`invalid_grant`, `consent_required`, ...): any name we don't define is the provider's."""
        try:
            return cls(reason)
        except ValueError:
            return cls.PROVIDER_ERROR


# Entra reports a declined consent as access_denied too (AADSTS65004), and its OpenID Connect
# additions consent_required / interaction_required mean the same to a person: they did not allow it.
_DECLINED = frozenset({"access_denied", "consent_required", "interaction_required"})


def provider_failure(error: str) -> SigninFailure:
    """What a provider's `error` on the callback (RFC 6749 section 4.1.2.1) means for the setup."""
    return SigninFailure.ACCESS_DENIED if error in _DECLINED else SigninFailure.PROVIDER_ERROR
