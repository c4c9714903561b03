"""The words for a refused sign-in (the page's title and the sentence the page and the chat show) and for missing privileges.

Keyed by `SigninFailure`, so a reason without words fails the test that walks the enum, not a person.
A provider's own `error` code is told in our words too (RFC 6749 section 4.1.2.1,
https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1, and Entra's OpenID Connect additions); its
`error_description` never reaches a page or the chat: Entra says it "is not intended to be end-user
friendly" (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-response).
"""

from __future__ import annotations

from bot.dialogs.failures import SigninFailure, provider_failure
from bot.dialogs.model import Provider
from bot.errors import OAuthFlowError
from bot.sync.dataverse_privileges import MissingPrivilege
from bot.sync.dynamics_auth import DynamicsFlowError, FlowProblem
from bot.sync.tables import Depth

TITLES: dict[SigninFailure, str] = {
    SigninFailure.INVALID_STATE: "This sign-in link isn't valid",
    SigninFailure.EXPIRED_STATE: "This sign-in link has expired",
    SigninFailure.REPLAYED_STATE: "This sign-in was already used",
    SigninFailure.LINK_REPLACED: "This sign-in link was replaced",
    SigninFailure.SETUP_GONE: "This setup is no longer waiting for a sign-in",
    SigninFailure.ACCESS_DENIED: "Sign-in cancelled",
    SigninFailure.OTHER_BROWSER: "Open this sign-in in the browser that started it",
    SigninFailure.SIGNIN_BUSY: "A sign-in through this link is already under way",
    SigninFailure.TOO_MANY: "Too many sign-in attempts",
    SigninFailure.CODE_PENDING: "A sign-in is already waiting for its code",
}
# PROVIDER_ERROR's title names the provider: see `title`.

MESSAGES: dict[SigninFailure, str] = {
    SigninFailure.INVALID_STATE: "This sign-in link isn't valid. Go back to Teams and start the sign-in from the "
    "setup card.",
    SigninFailure.EXPIRED_STATE: "This sign-in link has expired (they last 10 minutes). Go back to Teams and "
    "choose Try again on the setup card.",
    SigninFailure.REPLAYED_STATE: "This sign-in was already used. Nothing more was done. If you still need to "
    "sign in, go back to Teams and choose Try again on the setup card.",
    SigninFailure.LINK_REPLACED: "A newer sign-in link replaced this one. Use the button on the setup card in Teams.",
    SigninFailure.SETUP_GONE: "This setup was finished or cancelled, so the sign-in was not used and nothing was "
    "kept.",
    SigninFailure.ACCESS_DENIED: "You cancelled the sign-in or didn't allow access, so nothing was connected.",
    SigninFailure.OTHER_BROWSER: "This sign-in was started in another browser (or this browser's cookies were "
    "cleared), so it can't be finished here. Nothing was changed. Finish it in the browser where you opened the "
    "link from Teams, or open the link from the setup card again.",
    SigninFailure.SIGNIN_BUSY: "Someone is already signing in through this link in another browser, so I didn't "
    "start a second sign-in. Nothing was changed. If that was you, finish there; otherwise the person who started "
    "the setup can type cancel in Teams and start again.",
    SigninFailure.TOO_MANY: "This sign-in link was opened too many times. Nothing was changed. Go back to Teams "
    "and use the newest button on the setup card, or wait a few minutes.",
    SigninFailure.CODE_PENDING: "A sign-in for this setup is already waiting for its code in Teams, so this one "
    "was not used. Nothing was changed. Type the code you were shown first, or choose Try again on the setup card.",
}
# PROVIDER_ERROR's sentence names the provider: see `message`.

_APP_PROBLEM = (
    "{label} refused the connector's sign-in request (its app registration needs attention). "
    "Tell whoever runs the connector."
)
_PROVIDER_ERRORS = {
    "invalid_request": _APP_PROBLEM,
    "unauthorized_client": _APP_PROBLEM,
    "unsupported_response_type": _APP_PROBLEM,
    "invalid_scope": _APP_PROBLEM,
    "invalid_client": _APP_PROBLEM,
    "server_error": "{label} had a problem and couldn't finish the sign-in. Try again in a few minutes.",
    "temporarily_unavailable": "{label} is busy and couldn't finish the sign-in. Try again in a few minutes.",
    "login_required": "{label} needs you to sign in again. Try again.",
}
_GENERAL_ERROR = "{label} couldn't finish the sign-in. Try again; if it keeps happening, tell whoever runs the connector."


# The Dynamics sign-in's own problems (`bot.sync.dynamics_auth.DynamicsFlowError.problem`): MSAL's error
# names a person can act on, and ours.
FLOW_WORDS: dict[str, str] = {
    "access_denied": "The sign-in was cancelled, or the permissions were not granted.",
    "invalid_grant": "The sign-in code expired or was already used. Please start the sign-in again.",
    "consent_required": "The app needs consent in your organisation before you can sign in.",
    "interaction_required": "Microsoft needs you to complete an extra step. Please start the sign-in again.",
    "invalid_client": "The connector's app registration was refused by Microsoft (check its client secret).",
    "unauthorized_client": "The connector's app registration is not allowed in your organisation.",
    FlowProblem.UNREACHABLE: "Microsoft sign-in could not be reached. Please try again.",
    FlowProblem.MISMATCH: "This sign-in link does not match the sign-in that was started.",
    FlowProblem.NO_ACCOUNT: "Microsoft did not say who signed in.",
}


def flow_error_words(exc: OAuthFlowError) -> str:
    """What the page and the chat say about a sign-in flow error: the Dynamics sign-in's problems in
    our words (Entra's description when MSAL named no error we know), the setup's own as raised."""
    if isinstance(exc, DynamicsFlowError):
        return FLOW_WORDS.get(exc.problem) or exc.detail or "Microsoft refused the sign-in."
    return str(exc)


def title(reason: SigninFailure, provider: Provider) -> str:
    """The heading of the page that ends a refused sign-in."""
    return TITLES.get(reason, f"{provider.label} sign-in didn't work")


def message(reason: SigninFailure, provider: Provider) -> str:
    """What the page and the chat say about a refused sign-in."""
    return MESSAGES.get(reason, f"{provider.label} reported a problem with the sign-in.")


def provider_error_message(error: str, provider: Provider) -> str:
    """Our sentence for a provider's OAuth `error` code."""
    if provider_failure(error) is SigninFailure.ACCESS_DENIED:
        return MESSAGES[SigninFailure.ACCESS_DENIED]
    return _PROVIDER_ERRORS.get(error, _GENERAL_ERROR).format(label=provider.label)


# How the security role editor names each depth (the words a Dynamics admin knows).
DEPTH_WORDS: dict[Depth, str] = {
    Depth.BASIC: "User",
    Depth.LOCAL: "Business Unit",
    Depth.DEEP: "Parent: Child Business Units",
    Depth.GLOBAL: "Organization",
}


def privilege_words(missing: MissingPrivilege) -> str:
    """`Read on Xero Connector at Organization level (you have User level)`."""
    text = f"{missing.privilege.words} on {missing.table} at {DEPTH_WORDS[missing.needed]} level"
    if missing.held is not None:
        text += f" (you have {DEPTH_WORDS[missing.held]} level)"
    return text
