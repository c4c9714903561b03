"""The words for a provider's error (`bot.errors.ProviderError`): what happened, the provider's status or
code and its own (scrubbed) message, and what a person must do, if anything.

The sync core raises data (`code`, `status`, `detail`, `where`); this module is where it becomes a
sentence, for the chat (`error_words`) and for the run words in `cards.failure_words`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import (
    AuthError,
    ConcurrencyError,
    NotFound,
    PermissionDenied,
    Problem,
    ProviderError,
    RateLimited,
    StoreError,
    TransientProviderError,
)
from bot.sync.failures import scrub


def provider_name(provider: str) -> str:
    return "Xero" if provider == "xero" else "Dynamics 365" if provider else "A provider"


@dataclass(frozen=True)
class Words:
    """`what` happened, and what to do (`todo`; "" when it passes on its own). `{name}`: the provider."""

    what: str
    todo: str = ""

    def format(self, name: str) -> Words:
        return Words(self.what.format(name=name), self.todo.format(name=name))


# Our own `Problem`s, and the providers' codes whose meaning we know whatever the status.
PHRASES: dict[str, Words] = {
    Problem.BAD_RESPONSE: Words("{name} sent an answer we could not read"),
    Problem.BAD_STATUS: Words("{name} answered with a status other than OK"),
    Problem.BAD_TOKEN_RESPONSE: Words("{name}'s sign-in service answered without a usable token"),
    Problem.MISSING_REFRESH_TOKEN: Words(
        "Xero sent no refresh token (was offline access granted?)", "connect Xero again"
    ),
    Problem.NO_TOKENS: Words("this connection has no {name} sign-in", "connect {name} again"),
    Problem.TOKENS_REPLACED: Words("the {name} sign-in was replaced twice while it was being refreshed"),
    Problem.TOKEN_LOCK_BUSY: Words("another process kept refreshing this connection's {name} sign-in"),
    Problem.SIGN_IN_UNAVAILABLE: Words("Microsoft sign-in is temporarily unavailable"),
    Problem.NO_ROW_ID: Words("Dynamics 365 did not say which row it wrote"),
    Problem.NO_ORGANISATION: Words(
        "Xero returned no organisation for this connection", "reconnect Xero and choose the organisation"
    ),
    Problem.NO_ENVIRONMENT: Words(
        "no Dynamics 365 environment is chosen for this connection",
        "reconnect Dynamics 365 and choose an environment",
    ),
    Problem.IMPORT_NOT_STARTED: Words("Dynamics 365 answered without an import operation to follow"),
    Problem.RATE_LIMITED: Words("{name} is limiting how fast we may call it"),
    Problem.DAY_BUDGET: Words("Xero's daily API allowance for this organisation is nearly used up"),
    Problem.PAUSED: Words("Xero asked us to wait before calling it again"),
    Problem.CONNECTION_GONE: Words("this connection no longer exists"),
    Problem.NOT_RUN: Words("Dynamics 365's answer did not include this write"),
    "invalid_grant": Words("{name} no longer accepts this connection's sign-in", "connect {name} again"),
    "invalid_client": Words(
        "{name} rejected the connector's app credentials",
        "an administrator of the connector must check its client id and secret",
    ),
    "unauthorized_client": Words("{name} does not allow the connector's app here"),
    # Xero's 403 for a tenant the token does not cover (xero_errors.py).
    "AuthenticationUnsuccessful": Words(
        "Xero says this organisation is disconnected from the app or not covered by this connection",
        "reconnect Xero and choose the organisation again",
    ),
}


def _by_type(exc: ProviderError, name: str) -> Words:
    if isinstance(exc, AuthError):
        if exc.reconnect_required:
            return Words(f"{name} no longer accepts this connection's sign-in", f"reconnect {name}")
        return Words(f"{name} refused our sign-in")
    if isinstance(exc, PermissionDenied):
        return Words(f"{name} denied access")
    if isinstance(exc, NotFound):
        return Words(f"{name} could not find what we asked for")
    if isinstance(exc, RateLimited):
        return Words(f"{name} is limiting how fast we may call it")
    if isinstance(exc, TransientProviderError):
        return Words(f"{name} did not answer")
    return Words(f"{name} answered with an error")


def _wait(seconds: float) -> str:
    if seconds < 90:
        return f"try again in about {max(round(seconds), 1)} seconds"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"try again in about {minutes} minute{'' if minutes == 1 else 's'}"
    return f"try again in about {round(minutes / 60)} hours"


def sentence(text: str) -> str:
    """Capitalised, without a final stop (the caller decides how the sentence goes on)."""
    text = text.strip().rstrip(". ")
    return text[:1].upper() + text[1:]


def problem_words(exc: ProviderError) -> str:
    """What went wrong with a provider, as one sentence without its final full stop."""
    name = provider_name(exc.provider)
    known = PHRASES.get(exc.code)
    words = known.format(name) if known else _by_type(exc, name)
    status = str(exc.status) if exc.status is not None and exc.status >= 400 else ""
    reference = ", ".join(part for part in (status, "" if known else exc.code) if part)
    text = words.what + (f" ({reference})" if reference else "")
    if exc.code == Problem.DAY_BUDGET and exc.where:
        text += f" ({exc.where})"  # "3 calls left"
    detail = scrub(exc.detail)
    text += f": {detail.rstrip('. ')}" if detail else ""
    if words.todo:
        text += f"; {words.todo}"
    elif isinstance(exc, RateLimited) and exc.retry_after > 0:
        text += f"; {_wait(exc.retry_after)}"
    return sentence(text)


def error_words(exc: BaseException) -> str:
    """Any error the product raised on purpose, as the chat shows it, without a final full stop (the caller
    goes on): a provider's and the store's in our words; the others (a ValidationFailed, a refusal) are
    raised with the sentence meant for the person already."""
    if isinstance(exc, ProviderError):
        return problem_words(exc)
    if isinstance(exc, ConcurrencyError):
        return "Someone changed the same thing at the same moment"
    if isinstance(exc, StoreError):
        return "The connector's own storage did not answer"
    return sentence(str(exc))
