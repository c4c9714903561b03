"""Server-side validation of what cards send back (cards/submits.py)."""

from __future__ import annotations

import typing
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import ValidationFailed
from bot.storage.base import NotifyMode
from bot.sync.plans import PLANS
from cards.submits import (
    NAME_MAX,
    SUBMIT_MODELS,
    PickConnectionSubmit,
    RetryCommandSubmit,
    RunNowSubmit,
    SettingsSubmit,
    SetupCancelSubmit,
    Submit,
    VerifyCodeSubmit,
    XeroPickOrgSubmit,
    is_teams_signin,
    parse_submit,
    teams_signin_data,
)
from cards.verbs import CardVerb

GOOD_SETTINGS: dict[str, Any] = {
    "verb": "settings_submit",
    "connection_id": "conn-1",
    "connection_name": "Acme Ltd",
    "plan": "standard",
    "timezone": "Europe/London",
    "notify_mode": "failures_only",
}

# One valid value per verb, as Teams would send it.
GOOD: dict[CardVerb, dict[str, Any]] = {
    CardVerb.SETUP_START: {},
    CardVerb.SETUP_CANCEL: {"setup_id": "setup-1"},
    CardVerb.XERO_RETRY: {"setup_id": "setup-1"},
    CardVerb.XERO_PICK_ORG: {"setup_id": "setup-1", "xero_tenant_id": "0f4e9a36-8f2a-4c43-9d0f-3a1c7b2e5d6f"},
    CardVerb.VERIFY_CODE: {"setup_id": "setup-1", "verification_code": " 12 34 56 "},
    CardVerb.SOLUTION_CHECK_AGAIN: {"setup_id": "setup-1"},
    CardVerb.SOLUTION_INSTALL: {"setup_id": "setup-1"},
    CardVerb.SOLUTION_CONTINUE: {"setup_id": "setup-1"},
    CardVerb.DYNAMICS_RETRY: {"setup_id": "setup-1"},
    CardVerb.DYNAMICS_PICK_ENV: {
        "setup_id": "setup-1",
        "environment_id": "00000001-aaaa-4bbb-8ccc-dddddddddddd",
    },
    CardVerb.SETTINGS_SUBMIT: {k: v for k, v in GOOD_SETTINGS.items() if k != "verb"},
    CardVerb.SETTINGS_CANCEL: {"setup_id": "setup-1"},
    CardVerb.CONFIRM_DISCONNECT: {"connection_id": "conn-1"},
    CardVerb.CANCEL_DISCONNECT: {"connection_id": "conn-1"},
    CardVerb.PICK_CONNECTION: {"command": "status", "connection_id": "conn-2"},
    CardVerb.RUN_NOW: {"connection_id": "conn-1"},
    CardVerb.OPEN_SETTINGS: {"connection_id": "conn-1"},
    CardVerb.SHOW_STATUS: {"connection_id": "conn-1"},
    CardVerb.SOLUTION_UPGRADE: {"connection_id": "conn-1"},
    CardVerb.SHOW_HISTORY: {"connection_id": "conn-1"},
    CardVerb.RESUME_SYNC: {"connection_id": "conn-1"},
    CardVerb.RECONNECT_XERO: {"connection_id": "conn-1"},
    CardVerb.RECONNECT_DYNAMICS: {"connection_id": "conn-1"},
    CardVerb.RETRY_COMMAND: {"command_text": "/sync status Acme"},
}


def _errors(value: object) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as caught:
        parse_submit(value)
    assert str(caught.value)
    return caught.value.field_errors


def test_every_verb_has_a_model_whose_literal_matches() -> None:
    assert set(SUBMIT_MODELS) == set(CardVerb)
    for verb, model in SUBMIT_MODELS.items():
        assert typing.get_args(model.model_fields["verb"].annotation) == (verb,)
        assert model.model_config.get("frozen") is True


@pytest.mark.parametrize("verb", list(CardVerb))
def test_good_values_are_accepted(verb: CardVerb) -> None:
    parsed = parse_submit({"verb": verb.value, **GOOD[verb]})
    assert isinstance(parsed, SUBMIT_MODELS[verb])
    assert parsed.verb == verb


@pytest.mark.parametrize("verb", [v for v in CardVerb if GOOD[v]])
def test_each_missing_field_is_named(verb: CardVerb) -> None:
    for field in GOOD[verb]:
        value = {"verb": verb.value, **GOOD[verb]}
        del value[field]
        if verb in (CardVerb.SETTINGS_SUBMIT, CardVerb.SETTINGS_CANCEL) and field in (
            "setup_id",
            "connection_id",
        ):
            field = "connection_id"  # exactly one of the two: the error is reported once
        assert field in _errors(value)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "run_now",
        42,
        ["verb", "run_now"],
        {},
        {"verb": None},
        {"verb": 7},
        {"verb": "launch_rockets"},
        {"verb": "RUN_NOW", "connection_id": "c"},
        {1: "run_now"},
    ],
)
def test_not_a_known_action(value: object) -> None:
    assert set(_errors(value)) == {"verb"}


def test_teams_signin_is_the_documented_shape_only() -> None:
    url = "https://bot.example/oauth/xero/start?link=abc"
    data = teams_signin_data(url)
    assert data == {"msteams": {"type": "signin", "value": url}}
    assert is_teams_signin(data)
    assert is_teams_signin(teams_signin_data("http://127.0.0.1:3978/oauth/xero/start?link=abc"))
    for other in (
        None,
        "signin",
        {},
        {"msteams": {"type": "signin"}},
        {"msteams": {"type": "imBack", "value": url}},
        {"msteams": {"type": "messageBack", "value": url}},
        {"msteams": {"type": "signin", "value": url, "text": "x"}},
        {"msteams": {"type": "signin", "value": url}, "verb": "run_now"},
        {"msteams": {"type": "signin", "value": url}, "setup_id": "setup-1"},
        {"msteams": {"type": "signin", "value": "javascript:alert(1)"}},
        {"msteams": {"type": "signin", "value": "/oauth/xero/start"}},
        {"msteams": {"type": "signin", "value": 7}},
        {"msteams": ["signin", url]},
    ):
        assert not is_teams_signin(other), other


def test_teams_signin_data_is_not_a_submit() -> None:
    """Teams never posts it; if some client did, it is refused like any value without a verb."""
    assert set(_errors(teams_signin_data("https://bot.example/oauth/xero/start"))) == {"verb"}


def test_parsed_values_are_cleaned() -> None:
    parsed = parse_submit({"verb": "verify_code", **GOOD[CardVerb.VERIFY_CODE]})
    assert isinstance(parsed, VerifyCodeSubmit)
    assert parsed.verification_code == "123456"
    settings_ = parse_submit({**GOOD_SETTINGS, "connection_name": "  Cafe\u0301 Ltd  ", "plan": " premium "})
    assert isinstance(settings_, SettingsSubmit)
    assert settings_.connection_name == "Café Ltd"
    assert len(settings_.connection_name) == 8
    assert settings_.plan == "premium"
    assert settings_.notify_mode is NotifyMode.FAILURES_ONLY
    assert settings_.setup_id is None
    assert settings_.connection_id == "conn-1"
    pick = parse_submit({"verb": "pick_connection", "command": "Status", "connection_id": "c2"})
    assert isinstance(pick, PickConnectionSubmit)
    assert pick.command == "status"
    retry = parse_submit({"verb": "retry_command", "command_text": "  status Acme "})
    assert isinstance(retry, RetryCommandSubmit)
    assert retry.command_text == "status Acme"


def test_models_are_frozen() -> None:
    parsed = parse_submit({"verb": "run_now", "connection_id": "c"})
    assert isinstance(parsed, RunNowSubmit)
    with pytest.raises(pydantic.ValidationError):
        parsed.connection_id = "other"  # type: ignore[misc]


def test_extra_keys_forbidden_except_on_cards_with_other_inputs() -> None:
    assert set(_errors({"verb": "run_now", "connection_id": "c", "sneaky": "x"})) == {"sneaky"}
    # The setup card also holds the code and choice inputs; Teams sends them with every button.
    parsed = parse_submit(
        {"verb": "setup_cancel", "setup_id": "s", "verification_code": "", "xero_tenant_id": ""}
    )
    assert isinstance(parsed, SetupCancelSubmit)
    assert set(_errors({**GOOD_SETTINGS, "admin": "true"})) == {"admin"}


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("connection_name", "", "Give the connection a name."),
        ("connection_name", "   \t ", "Give the connection a name."),
        ("connection_name", "A" * (NAME_MAX + 1), "100 characters"),
        ("connection_name", "A" * 100_000, "100 characters"),
        ("connection_name", "Acme\nLtd", "control characters"),
        ("connection_name", "Acme\x00", "control characters"),
        ("connection_name", "Acme\u202egnp.exe", "control characters"),
        ("connection_name", "Acme\u2028Ltd", "control characters"),
        ("connection_name", 12, "Give the connection a name."),
        ("connection_name", None, "Give the connection a name."),
        ("plan", "platinum", "Choose a plan"),
        ("plan", "", "Choose a plan"),
        ("plan", ["trial"], "Choose a plan"),
        ("timezone", "Mars/Olympus_Mons", "Choose a timezone"),
        ("timezone", "../../etc/passwd", "Choose a timezone"),
        ("timezone", "/usr/share/zoneinfo/UTC", "Choose a timezone"),
        ("timezone", "localtime", "Choose a timezone"),
        ("timezone", "Europe/London\x00", "Choose a timezone"),
        ("timezone", "", "Choose a timezone"),
        ("timezone", "E" * 10_000, "Choose a timezone"),
        ("notify_mode", "always", "Choose when"),
        ("notify_mode", 1, "Choose when"),
        ("connection_id", "conn 1; drop", "out of date"),
        ("connection_id", "c" * 101, "out of date"),
    ],
)
def test_settings_field_errors(field: str, bad: object, message: str) -> None:
    errors = _errors({**GOOD_SETTINGS, field: bad})
    assert set(errors) == {field}
    assert message in errors[field]


def test_settings_all_errors_at_once_and_a_summary() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_submit(
            {
                "verb": "settings_submit",
                "connection_id": "c",
                "connection_name": "",
                "plan": "x",
                "timezone": "x",
                "notify_mode": "x",
            }
        )
    assert set(caught.value.field_errors) == {"connection_name", "plan", "timezone", "notify_mode"}
    assert "fields" in str(caught.value)


def test_settings_needs_exactly_one_owner() -> None:
    both = {**GOOD_SETTINGS, "setup_id": "s"}
    assert "connection_id" in _errors(both)
    neither = {k: v for k, v in GOOD_SETTINGS.items() if k != "connection_id"}
    assert "connection_id" in _errors(neither)
    parsed = parse_submit({**neither, "setup_id": "setup-1"})
    assert isinstance(parsed, SettingsSubmit)
    assert parsed.setup_id == "setup-1"


def test_every_plan_and_mode_accepted() -> None:
    for plan in PLANS:
        for mode in NotifyMode:
            parsed = parse_submit({**GOOD_SETTINGS, "plan": plan.id, "notify_mode": mode.value})
            assert isinstance(parsed, SettingsSubmit)


@pytest.mark.parametrize(
    ("verb", "field", "bad"),
    [
        (CardVerb.VERIFY_CODE, "verification_code", "12"),
        (CardVerb.VERIFY_CODE, "verification_code", "x" * 40),
        (CardVerb.VERIFY_CODE, "verification_code", "12<script>"),
        (CardVerb.XERO_PICK_ORG, "xero_tenant_id", ""),
        (CardVerb.XERO_PICK_ORG, "xero_tenant_id", "a b"),
        (CardVerb.DYNAMICS_PICK_ENV, "environment_id", "x" * 500),
        (CardVerb.PICK_CONNECTION, "command", "help"),
        (CardVerb.PICK_CONNECTION, "command", "rm -rf"),
        (CardVerb.PICK_CONNECTION, "connection_id", ""),
        (CardVerb.RETRY_COMMAND, "command_text", "make me a sandwich"),
        (CardVerb.RETRY_COMMAND, "command_text", "status " + "x" * 300),
        (CardVerb.RETRY_COMMAND, "command_text", "status\x07"),
        (CardVerb.RUN_NOW, "connection_id", {"$ne": ""}),
        (CardVerb.SETUP_CANCEL, "setup_id", ""),
    ],
)
def test_other_field_errors(verb: CardVerb, field: str, bad: object) -> None:
    assert field in _errors({"verb": verb.value, **GOOD[verb], field: bad})


def test_choice_messages_are_specific() -> None:
    errors = _errors({"verb": "xero_pick_org", "setup_id": "s"})
    assert errors == {"xero_tenant_id": "Choose an organisation from the list."}
    assert XeroPickOrgSubmit.missing_messages["xero_tenant_id"] == errors["xero_tenant_id"]


# --- property tests --------------------------------------------------------------------------

ANY_TEXT = st.text(alphabet=st.characters(codec=None), max_size=300)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(ANY_TEXT, children, max_size=3),
    max_leaves=8,
)
FIELD_VALUE = st.one_of(
    ANY_TEXT,
    st.text(min_size=90, max_size=5000),
    st.sampled_from(["trial", "standard", "Europe/London", "every_run", "UTC", " ", "\x00", "\u202e"]),
    JSONISH,
)
SETTINGS_FIELDS = ("verb", "setup_id", "connection_id", "connection_name", "plan", "timezone", "notify_mode")


def _attempt(value: object) -> tuple[Submit | None, ValidationFailed | None]:
    """Parse, catching only ValidationFailed: any other exception fails the test."""
    try:
        return parse_submit(value), None
    except ValidationFailed as exc:
        return None, exc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SETTINGS_FIELDS) | ANY_TEXT, FIELD_VALUE, max_size=9))
def test_settings_submit_random_input_only_raises_validation_failed(fields: dict[str, Any]) -> None:
    parsed, error = _attempt({**fields, "verb": "settings_submit"})
    if error is not None:
        assert error.field_errors
        assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in error.field_errors.items())
        return
    assert isinstance(parsed, SettingsSubmit)
    assert 1 <= len(parsed.connection_name) <= NAME_MAX
    assert parsed.connection_name == parsed.connection_name.strip()


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_connection_name_property(name: str) -> None:
    parsed, error = _attempt({**GOOD_SETTINGS, "connection_name": name})
    if error is not None:
        assert set(error.field_errors) == {"connection_name"}
        return
    assert isinstance(parsed, SettingsSubmit)
    cleaned = parsed.connection_name
    assert cleaned
    assert cleaned == cleaned.strip()
    assert len(cleaned) <= NAME_MAX
    assert not any(ord(ch) < 32 or ch == "\x7f" for ch in cleaned)


@settings(max_examples=300, deadline=None)
@given(JSONISH)
def test_any_value_only_raises_validation_failed(value: Any) -> None:
    _, error = _attempt(value)
    assert error is None or error.field_errors


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(CardVerb)), st.dictionaries(ANY_TEXT, FIELD_VALUE, max_size=5))
def test_any_verb_with_junk_only_raises_validation_failed(verb: CardVerb, junk: dict[str, Any]) -> None:
    parsed, error = _attempt({**junk, "verb": verb.value})
    if error is None:
        assert parsed is not None
        assert parsed.verb == verb
    else:
        assert error.field_errors
