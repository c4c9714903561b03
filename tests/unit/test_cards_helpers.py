"""Templates, formatting, timezones and element builders behind the cards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.storage.base import EntityCounts, RunOutcome
from cards.base import clip
from cards.elements import md_escape, submit
from cards.formatting import (
    counts_in_words,
    entity_label,
    format_both,
    format_duration,
    format_local,
    format_utc,
    ordered_counts,
    outcome_words,
    total_counts,
)
from cards.template import TemplateError, finish, load_template, slot
from cards.timezones import offered_zones, timezone_choices, valid_zones, zone_title
from cards.verbs import CardVerb

T0 = datetime(2025, 7, 1, 23, 30, tzinfo=UTC)


def test_load_template_gives_fresh_copies() -> None:
    first = load_template("status")
    first["body"].clear()
    assert load_template("status")["body"]


def test_missing_template_or_slot_is_an_error() -> None:
    with pytest.raises(TemplateError):
        load_template("no_such_card")
    with pytest.raises(TemplateError, match="nope"):
        slot(load_template("status"), "nope")


def test_finish_strips_slot_ids_and_empty_elements() -> None:
    card = {
        "type": "AdaptiveCard",
        "body": [
            {"type": "TextBlock", "id": "slot.a", "text": ""},
            {"type": "Container", "id": "slot.b", "items": [{"type": "FactSet", "facts": []}]},
            {"type": "TextBlock", "id": "slot.c", "text": "kept"},
            {"type": "Input.Text", "id": "name"},
        ],
        "actions": [],
    }
    assert finish(card) == {
        "type": "AdaptiveCard",
        "body": [{"type": "TextBlock", "text": "kept"}, {"type": "Input.Text", "id": "name"}],
    }


def test_times_are_formatted_one_way() -> None:
    assert format_utc(T0) == "2025-07-01 23:30 UTC"
    assert format_utc(None) == "never"
    assert format_utc(T0.replace(tzinfo=None)) == "2025-07-01 23:30 UTC"
    assert format_utc(T0.astimezone(timezone(timedelta(hours=5)))) == "2025-07-01 23:30 UTC"
    assert format_local(T0, "Europe/London") == "2025-07-02 00:30 Europe/London"
    assert format_local(T0, "America/New_York") == "2025-07-01 19:30 America/New York"
    assert format_local(T0, "Not/AZone") == "2025-07-01 23:30 UTC"
    assert format_both(T0, "UTC") == "2025-07-01 23:30 UTC"
    assert format_both(T0, "Australia/Sydney") == "2025-07-01 23:30 UTC (2025-07-02 09:30 Australia/Sydney)"
    assert format_both(None, "Australia/Sydney", never="not yet") == "not yet"


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "still running"),
        (-3, "0.0 s"),
        (0.42, "0.4 s"),
        (42.4, "42 s"),
        (60, "1 min"),
        (125, "2 min 5 s"),
        (3600, "1 h"),
        (3725, "1 h 2 min"),
    ],
)
def test_durations(seconds: float | None, words: str) -> None:
    assert format_duration(seconds) == words


def test_counts_and_labels() -> None:
    counts = {
        "xdc_brandingtheme": EntityCounts(created=1),
        "custom_things": EntityCounts(unchanged=1200),
        "xdc_chartofaccounts": EntityCounts(created=3, updated=1, failed=2),
        "tax_rates": EntityCounts(),
    }
    labels = [label for label, _ in ordered_counts(counts)]
    assert labels == ["Chart of Accounts", "Tax Rates", "Branding Themes", "Custom things"]
    assert entity_label("Accounts") == "Chart of Accounts"
    total = total_counts(counts)
    assert (total.created, total.updated, total.unchanged, total.failed) == (4, 1, 1200, 2)
    assert counts_in_words(total) == "4 created, 1 updated, 1,200 unchanged, 2 failed"
    assert counts_in_words(EntityCounts()) == "no records"
    assert outcome_words(RunOutcome.PARTIAL).startswith("⚠️")
    assert outcome_words("weird_state") == "Weird state"


def test_offered_zones_fit_and_make_sense() -> None:
    zones = offered_zones()
    assert zones[0] == "UTC"
    assert len(zones) == len(set(zones))
    assert set(zones) <= valid_zones()
    for city in (
        "Europe/London",
        "Europe/Amsterdam",
        "Europe/Stockholm",
        "America/New_York",
        "Pacific/Auckland",
        "Australia/Sydney",
        "Asia/Kolkata",
        "Africa/Johannesburg",
        "Asia/Singapore",
    ):
        assert city in zones
    assert not [z for z in zones if z.startswith(("Antarctica/", "Etc/"))]
    assert 300 < len(zones) < 420


def test_timezone_choices_titles_and_extras() -> None:
    choices = timezone_choices(always=["Etc/GMT+5", "Asia/Calcutta", "Not/AZone", ""])
    values = [v for v, _ in choices]
    assert values[0] == "UTC"
    assert "Etc/GMT+5" in values
    assert "Asia/Calcutta" in values
    assert "Not/AZone" not in values
    titles = dict(choices)
    assert titles["America/New_York"] == "New York"
    assert titles["America/Argentina/Buenos_Aires"] == "Buenos Aires (Argentina)"
    assert titles["Etc/GMT+5"] == "Etc/GMT+5"
    assert len(set(titles.values())) == len(titles)
    assert zone_title("UTC") == "UTC"


def test_markdown_escaping_and_clipping() -> None:
    assert md_escape("[a](b) *c* _d_ `e`") == r"\[a\](b) \*c\* \_d\_ \`e\`"
    assert clip("a  b\n c", 10) == "a b c"
    assert clip("abcdefghij", 5) == "abcd…"
    assert clip(" one \n\n two  three ", 50, keep_lines=True) == "one\n\ntwo three"


def test_submit_action_shape() -> None:
    assert submit("Go", CardVerb.RUN_NOW, connection_id="c") == {
        "type": "Action.Submit",
        "title": "Go",
        "data": {"verb": "run_now", "connection_id": "c"},
        "associatedInputs": "none",
    }
    with_inputs = submit("Save", CardVerb.SETTINGS_SUBMIT, with_inputs=True, hidden={"setup_id": "s"})
    assert "associatedInputs" not in with_inputs
    assert with_inputs["data"]["setup_id"] == "s"
