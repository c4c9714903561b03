"""Refused sign-ins travel as `SigninFailure` names; only bot.dialogs.wording turns them into words."""

from __future__ import annotations

import pytest

from bot.dialogs import wording
from bot.dialogs.failures import SigninFailure, provider_failure
from bot.dialogs.model import Provider
from bot.dialogs.oauth_state import StateError


@pytest.mark.parametrize("reason", list(SigninFailure))
def test_every_reason_has_a_title_and_a_sentence_for_each_provider(reason: SigninFailure) -> None:
    for provider in Provider:
        title, sentence = wording.title(reason, provider), wording.message(reason, provider)
        assert title
        assert sentence
        assert title != sentence
        if reason is SigninFailure.PROVIDER_ERROR:
            # The only reason whose words name the provider: no fixed sentence could.
            assert provider.label in title
            assert provider.label in sentence
    assert reason is SigninFailure.PROVIDER_ERROR or (reason in wording.TITLES and reason in wording.MESSAGES)


def test_a_reason_is_its_stable_name() -> None:
    assert SigninFailure("expired_state") is SigninFailure.EXPIRED_STATE
    assert SigninFailure.of("access_denied") is SigninFailure.ACCESS_DENIED
    # MSAL's own error names (passed on by the Dynamics sign-in) are the provider's problem.
    for msal in ("invalid_grant", "consent_required", "provider_unavailable", ""):
        assert SigninFailure.of(msal) is SigninFailure.PROVIDER_ERROR


def test_provider_errors_are_told_in_our_words() -> None:
    for declined in ("access_denied", "consent_required", "interaction_required"):
        assert provider_failure(declined) is SigninFailure.ACCESS_DENIED
        assert wording.provider_error_message(declined, Provider.XERO) == wording.MESSAGES[SigninFailure.ACCESS_DENIED]
    assert provider_failure("server_error") is SigninFailure.PROVIDER_ERROR
    app_problem = wording.provider_error_message("invalid_client", Provider.DYNAMICS)
    assert "Dynamics 365" in app_problem
    assert "app registration" in app_problem
    unknown = wording.provider_error_message("<script>phish</script>", Provider.XERO)
    assert "phish" not in unknown
    assert unknown.startswith("Xero")


def test_a_state_error_carries_the_name_not_the_words() -> None:
    error = StateError(SigninFailure.SIGNIN_BUSY)
    assert error.reason is SigninFailure.SIGNIN_BUSY
    assert wording.MESSAGES[SigninFailure.SIGNIN_BUSY] not in str(error)
