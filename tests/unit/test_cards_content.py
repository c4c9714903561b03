"""What each card says and offers: steps, errors under their fields, facts, buttons."""

from __future__ import annotations

import copy
import json

import pytest

from bot.storage.base import (
    NotifyMode,
)
from bot.sync.ports import AttentionReason
from cards import (
    Choice,
    ConnectionChoiceCardData,
    MessageCardData,
    SettingsCardData,
    StatusCardData,
    render_message_card,
    render_settings_card,
    render_setup_card,
)
from cards.submits import is_teams_signin
from tests.unit.test_cards_cases import (
    CASES,
    ORGS,
    SETUP,
    T0,
    Json,
    card_actions,
    card_inputs,
    make_connection,
    plain_texts,
    walk_card,
)


def _body_ids(card: Json) -> list[str]:
    return [str(n.get("id", "")) for n in card["body"]]


def test_setup_card_shows_steps_and_current_actions() -> None:
    card = CASES["setup: code"]()
    texts = plain_texts(card)
    for title in (
        "Connect to Xero",
        "Install our solution in Dynamics 365",
        "Connect to Dynamics 365",
        "First sync",
    ):
        assert title in texts
    urls = [a["url"] for a in card_actions(card) if a["type"] == "Action.OpenUrl"]
    assert urls == ["https://bot.example/oauth/xero/start?s=1"]
    code = next(i for i in card_inputs(card) if i["id"] == "verification_code")
    assert code["isRequired"] is True
    assert code["label"]
    verbs = [a["data"]["verb"] for a in card_actions(card) if a["type"] == "Action.Submit"]
    assert verbs == ["verify_code", "setup_cancel"]
    assert "That code doesn't match" in texts
    done = CASES["setup: solution missing"]()
    assert "✅" in json.dumps(done, ensure_ascii=False)
    assert "Acme Ltd (NZ)" in plain_texts(done)
    assert "⚠️" in json.dumps(done, ensure_ascii=False)


def test_setup_card_error_sits_under_its_input() -> None:
    card = CASES["setup: several orgs"]()
    panel = card["body"][-1]["items"]
    index = next(i for i, e in enumerate(panel) if e.get("id") == "xero_tenant_id")
    assert panel[index + 1]["inlines"][0]["text"] == "Choose an organisation."
    assert panel[index + 1]["inlines"][0]["color"] == "Attention"
    assert [c["value"] for c in panel[index]["choices"]] == [o.value for o in ORGS]


def test_setup_solution_explains_both_ways_and_lists_privileges() -> None:
    card = CASES["setup: solution missing"]()
    blob = json.dumps(card, ensure_ascii=False)
    assert "AppSource" in blob
    assert "Import solution" in blob
    assert "prvCreatexdc_table0" in blob
    assert "and 5 more" in blob
    verbs = [a["data"]["verb"] for a in card_actions(card) if a["type"] == "Action.Submit"]
    assert "solution_check_again" in verbs


def _signin_buttons(card: Json) -> list[Json]:
    titles = ("Connect to Xero", "Connect to Dynamics 365")
    return [a for a in card_actions(card) if a.get("title") in titles]


@pytest.mark.parametrize(
    ("plain_case", "teams_case", "title", "url"),
    [
        ("setup: code", "setup: code in Teams", "Connect to Xero", "https://bot.example/oauth/xero/start?s=1"),
        (
            "setup: dynamics sign-in",
            "setup: dynamics sign-in in Teams",
            "Connect to Dynamics 365",
            "https://bot.example/oauth/dynamics/start?s=2",
        ),
    ],
)
def test_signin_button_is_teams_popup_or_open_url_with_the_same_title(
    plain_case: str, teams_case: str, title: str, url: str
) -> None:
    (opened,) = _signin_buttons(CASES[plain_case]())
    assert opened == {"type": "Action.OpenUrl", "title": title, "url": url}
    (popup,) = _signin_buttons(CASES[teams_case]())
    # Exactly the documented shape: no verb, no hidden fields, nothing Teams would post to the bot.
    assert popup == {"type": "Action.Submit", "title": title, "data": {"msteams": {"type": "signin", "value": url}}}
    assert is_teams_signin(popup["data"])


def test_teams_signin_card_still_takes_the_typed_code() -> None:
    card = CASES["setup: code in Teams"]()
    assert "verification_code" in [i["id"] for i in card_inputs(card)]
    verbs = [a["data"]["verb"] for a in card_actions(card) if "verb" in a.get("data", {})]
    assert verbs == ["verify_code", "setup_cancel"]
    assert not [a for a in card_actions(card) if a["type"] == "Action.OpenUrl"]


def test_solution_step_offers_another_environment_only_when_there_were_several() -> None:
    several = CASES["setup: solution missing, several environments"]()
    buttons = [(a["title"], a["data"]) for a in card_actions(several) if a["type"] == "Action.Submit"]
    assert ("Check again", {"verb": "solution_check_again", "setup_id": "setup-1"}) in buttons
    assert ("Choose another environment", {"verb": "dynamics_retry", "setup_id": "setup-1"}) in buttons
    for name in ("setup: solution missing", "setup: solution, no links"):
        titles = [a["title"] for a in card_actions(CASES[name]())]
        assert "Check again" in titles
        assert "Choose another environment" not in titles


def test_finished_and_cancelled_setups_offer_no_cancel() -> None:
    for name in ("setup: finished", "setup: cancelled"):
        verbs = [a["data"]["verb"] for a in card_actions(CASES[name]()) if a["type"] == "Action.Submit"]
        assert "setup_cancel" not in verbs
    assert "every 10 minutes" in json.dumps(CASES["setup: finished"]())


def test_settings_card_fields_errors_and_warnings() -> None:
    card = CASES["settings: errors and warnings"]()
    body = card["body"]
    ids = _body_ids(card)
    name = body[ids.index("connection_name")]
    assert name["isRequired"] is True
    assert name["maxLength"] == 100
    assert name["label"]
    assert name["errorMessage"]
    for field, message in (
        ("connection_name", "Give the connection a name."),
        ("plan", "Choose a plan."),
        ("notify_mode", "Choose when you want to hear about runs."),
    ):
        under = body[ids.index(field) + 1]
        assert under["type"] == "Container"
        assert under["items"][0]["inlines"][0]["text"] == message
    tz = body[ids.index("timezone")]
    assert tz["style"] == "filtered"
    assert tz["value"] == "Europe/London"
    assert "Europe/London" in {c["value"] for c in tz["choices"]}
    assert "Europe/Amsterdam" in {c["value"] for c in tz["choices"]}
    warnings = plain_texts(card)
    assert "Pacific/Auckland" in warnings
    assert "America/New York" in warnings
    assert "Someone else saved" in warnings
    last = next(n for n in body if n.get("type") == "TextBlock" and n["text"].startswith("Last run (UTC)"))
    assert last["text"] == "Last run (UTC): 2025-03-14 09:05"
    plans = body[ids.index("plan")]
    assert [c["value"] for c in plans["choices"]] == ["trial", "standard", "premium"]
    assert plans["value"] == "standard"
    assert "every 10 minutes" in plans["choices"][1]["title"]


def test_settings_for_setup_prefills_and_has_no_warning_when_clocks_agree() -> None:
    card = CASES["settings: setup"]()
    ids = _body_ids(card)
    assert card["body"][ids.index("timezone")]["value"] == "Pacific/Auckland"
    assert card["body"][ids.index("connection_name")]["value"] == "Acme Ltd (NZ)"
    assert "⚠️" not in json.dumps(card, ensure_ascii=False)
    assert "Last run (UTC): never" in json.dumps(card)
    save = next(a for a in card["actions"] if a["title"] == "Save")
    assert save["data"] == {"verb": "settings_submit", "setup_id": "setup-1"}
    same = SettingsCardData(setup_id="s", timezone="Europe/London", xero_timezone="Europe/Lisbon", now=T0)
    assert "⚠️" not in json.dumps(render_settings_card(same), ensure_ascii=False)


def test_status_card_facts_and_buttons() -> None:
    card = CASES["status: active"]()
    facts = {
        f["title"]: f["value"] for n in walk_card(card) if n.get("type") == "FactSet" for f in n["facts"]
    }
    assert facts["Xero organisation"].startswith("✅")
    assert facts["Dynamics 365"].startswith("✅")
    assert facts["Plan"] == "Standard: every 10 minutes"
    assert facts["Last run"] == "2025-03-14 09:05 UTC (2025-03-14 22:05 Pacific/Auckland)"
    assert facts["Next run"].startswith("2025-03-14 09:15 UTC")
    assert facts["Xero API calls left today"].startswith("4,700 of 5,000")
    assert "44 created" not in facts["Outcome"]
    assert "4 created" in facts["Outcome"]
    assert [a["title"] for a in card["actions"]] == ["Run now", "Settings", "History"]
    broken = CASES["status: xero reconnect"]()
    facts = {
        f["title"]: f["value"] for n in walk_card(broken) if n.get("type") == "FactSet" for f in n["facts"]
    }
    assert facts["Xero organisation"].startswith("⚠️")
    assert "sign in again" in facts["Xero organisation"]
    assert next(a["data"]["verb"] for a in broken["actions"]) == "reconnect_xero"
    paused = CASES["status: paused"]()
    assert "resume_sync" in [a["data"]["verb"] for a in paused["actions"]]
    assert "run_now" not in [a["data"]["verb"] for a in paused["actions"]]


def test_stale_reconnect_reason_is_not_shown_on_an_active_connection() -> None:
    data = StatusCardData.from_connection(make_connection(status_reason=AttentionReason.XERO_RECONNECT))
    assert data.xero_problem == ""
    assert data.dynamics_problem == ""


def test_run_result_lists_counts_and_at_most_ten_failures() -> None:
    card = CASES["run result: partial, many failures"]()
    tables = [n for n in walk_card(card) if n.get("type") == "Table"]
    assert len(tables) == 1
    rows = [[c["items"][0]["inlines"][0]["text"] for c in r["cells"]] for r in tables[0]["rows"]]
    assert rows[0] == ["Records", "Chart of Accounts", "Tax Rates", "Branding Themes"]
    assert [r[0] for r in rows[1:]] == ["Created", "Updated", "Unchanged", "Deactivated", "Failed"]
    columns = list(zip(*rows[1:], strict=True))
    assert list(columns[1]) == ["3", "1", "40", "1", "0"]  # Chart of Accounts
    text = plain_texts(card)
    assert text.count("TAX0") == 10
    assert "TAX010" not in text
    assert "…and 15 more." in json.dumps(card, ensure_ascii=False)
    facts = {
        f["title"]: f["value"] for n in walk_card(card) if n.get("type") == "FactSet" for f in n["facts"]
    }
    assert facts["Took"] == "42 s"
    assert "run_now" in [a["data"]["verb"] for a in card["actions"]]
    ok = CASES["run result: succeeded"]()
    assert "run_now" not in [a["data"]["verb"] for a in ok["actions"]]


def test_history_has_a_row_per_run_capped() -> None:
    card = CASES["history: many"]()
    table = next(n for n in walk_card(card) if n.get("type") == "Table")
    assert len(table["rows"]) == 1 + 25
    header = [c["items"][0]["inlines"][0]["text"] for c in table["rows"][0]["cells"]]
    assert header == ["When (Pacific/Auckland)", "Outcome", "Changes", "Took"]
    first = [c["items"][0]["inlines"][0]["text"] for c in table["rows"][1]["cells"]]
    assert first[0] == "2025-03-14 22:05"
    assert first[3] == "42 s"
    assert "No runs yet" in json.dumps(CASES["history: none"]())


def test_connection_choice_carries_the_command() -> None:
    card = CASES["choose: two"]()
    go = card["actions"][0]
    assert go["data"] == {"verb": "pick_connection", "command": "status"}
    assert "associatedInputs" not in go
    with pytest.raises(ValueError, match="command"):
        ConnectionChoiceCardData(command="help", connections=(Choice(value="c", title="C"),))


@pytest.mark.parametrize("reason", list(AttentionReason))
def test_alert_offers_a_fix(reason: AttentionReason) -> None:
    card = CASES[f"alert: {reason.value}"]()
    verbs = [a["data"]["verb"] for a in card["actions"]]
    assert verbs
    assert all(a["data"]["connection_id"] == "conn-1" for a in card["actions"])
    expected = {
        AttentionReason.XERO_RECONNECT: "reconnect_xero",
        AttentionReason.TENANT_DISCONNECTED: "reconnect_xero",
        AttentionReason.DYNAMICS_RECONNECT: "reconnect_dynamics",
        AttentionReason.TIMEZONE_MISMATCH: "open_settings",
        AttentionReason.XERO_DAILY_LIMIT: "open_settings",
        AttentionReason.REPEATED_FAILURES: "show_history",
        AttentionReason.XERO_TOKEN_EXPIRING: "run_now",
        AttentionReason.DYNAMICS_SIGNIN_EXPIRING: "reconnect_dynamics",
    }[reason]
    assert verbs[0] == expected


def test_message_card_retry_button() -> None:
    card = CASES["message: error with retry"]()
    assert card["actions"] == [
        {
            "type": "Action.Submit",
            "title": "Try again",
            "data": {"verb": "retry_command", "command_text": "status Acme"},
            "associatedInputs": "none",
        }
    ]
    lines = [b["inlines"][0]["text"] for b in card["body"][1]["items"]]
    assert lines == ["It answered 503.", "Try again in a minute."]
    no_retry = render_message_card(MessageCardData(title="Oops", retry_command="make coffee"))
    assert "actions" not in no_retry


def test_help_card_lists_every_command() -> None:
    from bot.commands import help_lines

    text = plain_texts(CASES["help"]())
    for line in help_lines():
        usage, _, description = line.partition(": ")
        assert usage in text
        assert description in text


def test_rendering_is_pure() -> None:
    data = SETUP.model_copy(update={"xero_orgs": ORGS})
    first = render_setup_card(data)
    second = render_setup_card(data)
    assert first == second
    mutated = copy.deepcopy(first)
    mutated["body"].clear()
    assert render_setup_card(data) == second


def test_notify_mode_choices_cover_the_enum() -> None:
    card = CASES["settings: setup"]()
    notify = next(i for i in card_inputs(card) if i["id"] == "notify_mode")
    assert {c["value"] for c in notify["choices"]} == {m.value for m in NotifyMode}
