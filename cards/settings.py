"""The settings form: name, plan, timezone, notifications; shown during setup and by `settings`, where it
also has a switch per synced entity and "Default connection for this Dynamics 365 environment".

Errors found on the server (`ValidationFailed.field_errors`) come back as red lines right under the
field they concern. When the Xero organisation, the Dynamics 365 user and the chosen timezone do not
keep the same clock, the form says so, because schedules and card times follow the chosen zone.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

from pydantic import Field, model_validator

from bot.storage.base import Connection, NotifyMode, utcnow
from bot.sync.plans import PLANS, Plan
from cards.base import CardData, clip
from cards.elements import error_text, md_escape, plain, submit, text
from cards.formatting import format_utc, zone, zone_label
from cards.template import Json, finish, load_template, slot
from cards.timezones import timezone_choices
from cards.verbs import CardVerb

NOTIFY_TITLES: dict[NotifyMode, str] = {
    NotifyMode.EVERY_RUN: "After every run",
    NotifyMode.CHANGES_OR_FAILURES: "Only when something changed or failed",
    NotifyMode.FAILURES_ONLY: "Only when a run fails",
}
INPUT_IDS = ("connection_name", "plan", "timezone", "notify_mode")
# The switches of an existing connection: (input id, title). A switched-off entity is not read from
# Xero and its rows in Dynamics 365 are left as they are.
SYNC_SWITCHES: tuple[tuple[str, str], ...] = (
    ("sync_accounts", "Chart of accounts"),
    ("sync_tax_rates", "Tax rates"),
    ("sync_branding_themes", "Branding themes"),
    ("sync_tracking_categories", "Tracking categories and their options"),
)
DEFAULT_SWITCH = "is_default"


class SettingsCardData(CardData):
    # Exactly one of them: the form of a setup in progress, or of an existing connection.
    setup_id: str = ""
    connection_id: str = ""
    connection_name: str = ""
    plan: str = "trial"
    timezone: str = "UTC"
    notify_mode: NotifyMode = NotifyMode.EVERY_RUN
    last_run_at: datetime | None = None
    xero_timezone: str = ""
    dynamics_timezone: str = ""
    field_errors: dict[str, str] = Field(default_factory=dict)
    form_error: str = ""  # a problem not tied to one field (e.g. someone else saved first)
    now: datetime = Field(default_factory=utcnow)  # the moment the zones are compared at
    sync_accounts: bool = True
    sync_tax_rates: bool = True
    sync_branding_themes: bool = True
    sync_tracking_categories: bool = True
    is_default: bool = False
    environment_name: str = ""

    @model_validator(mode="after")
    def _one_owner(self) -> SettingsCardData:
        if bool(self.setup_id) == bool(self.connection_id):
            raise ValueError("give exactly one of setup_id and connection_id")
        return self

    @classmethod
    def from_connection(cls, connection: Connection, **overrides: object) -> SettingsCardData:
        values: dict[str, object] = {
            "connection_id": connection.id,
            "connection_name": connection.name,
            "plan": connection.plan,
            "timezone": connection.timezone,
            "notify_mode": connection.notify_mode,
            "last_run_at": connection.last_run_at,
            "xero_timezone": connection.xero_timezone,
            "dynamics_timezone": connection.dataverse_user_timezone,
            "sync_accounts": connection.sync_accounts,
            "sync_tax_rates": connection.sync_tax_rates,
            "sync_branding_themes": connection.sync_branding_themes,
            "sync_tracking_categories": connection.sync_tracking_categories,
            "is_default": bool(connection.is_default),
            "environment_name": connection.dataverse_env_name,
        }
        values.update(overrides)
        return cls.model_validate(values)

    @classmethod
    def for_setup(
        cls,
        setup_id: str,
        *,
        suggested_name: str = "",
        xero_timezone: str = "",
        dynamics_timezone: str = "",
        client_timezone: str = "",
    ) -> SettingsCardData:
        """Pre-filled for a new connection: the first known zone of Xero, Dynamics, the Teams client."""
        chosen = next((z for z in (xero_timezone, dynamics_timezone, client_timezone) if zone(z)), "UTC")
        return cls(
            setup_id=setup_id,
            connection_name=suggested_name,
            timezone=chosen,
            xero_timezone=xero_timezone,
            dynamics_timezone=dynamics_timezone,
        )


def _plan_title(plan: Plan) -> str:
    runs = "run" if plan.on_demand_per_day == 1 else "runs"
    return f"{plan.name}: {plan.schedule_in_words}, up to {plan.on_demand_per_day} on-demand {runs} a day"


def _same_clock(first: str, second: str, now: datetime) -> bool:
    """True if both zones show the same time now and in half a year (so daylight saving counts)."""
    a, b = zone(first), zone(second)
    if a is None or b is None:
        return True
    moments = (now, now + timedelta(days=182))
    return all(m.astimezone(a).utcoffset() == m.astimezone(b).utcoffset() for m in moments)


def timezone_warnings(data: SettingsCardData) -> list[str]:
    chosen, xero_tz, dyn_tz = data.timezone, data.xero_timezone, data.dynamics_timezone
    warnings: list[str] = []
    if xero_tz and not _same_clock(xero_tz, chosen, data.now):
        warnings.append(
            f"Your Xero organisation keeps the time of {zone_label(xero_tz)}, "
            f"but this connection uses {zone_label(chosen)}."
        )
    if dyn_tz and not _same_clock(dyn_tz, chosen, data.now):
        warnings.append(
            f"Your Dynamics 365 user's timezone is {zone_label(dyn_tz)}, "
            f"but this connection uses {zone_label(chosen)}."
        )
    if xero_tz and dyn_tz and not warnings and not _same_clock(xero_tz, dyn_tz, data.now):
        warnings.append(
            f"Xero uses {zone_label(xero_tz)} and your Dynamics 365 user {zone_label(dyn_tz)}: "
            "dates near midnight can show on different days."
        )
    if warnings:
        warnings.append("The schedule and the times on my cards follow the connection's timezone.")
    return warnings


def _displayable(name: str) -> str:
    """What the user typed, safe to put back in the field (control characters dropped, clipped)."""
    kept = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cs", "Zl", "Zp"})
    return clip(kept, 100)


def _toggle(input_id: str, title: str, on: bool) -> Json:
    return {
        "type": "Input.Toggle",
        "id": input_id,
        "title": title,
        "value": "true" if on else "false",
        "valueOn": "true",
        "valueOff": "false",
        "wrap": True,
    }


def _switches(data: SettingsCardData) -> list[Json]:
    """What syncs, and whether this is the environment's default connection."""
    items: list[Json] = [text("What to sync", weight="Bolder")]
    items += [_toggle(input_id, title, bool(getattr(data, input_id))) for input_id, title in SYNC_SWITCHES]
    items.append(
        plain(
            "Switched off: not read from Xero, and its rows in Dynamics 365 stay as they are.",
            size="Small",
            isSubtle=True,
        )
    )
    env = (
        clip(data.environment_name, 100) or "this Dynamics 365 environment"
    )  # a toggle's title is plain text
    items.append(_toggle(DEFAULT_SWITCH, f"Default connection for {env}", data.is_default))
    items.append(
        plain(
            "One connection per environment is the default: choosing it here clears it on the others.",
            size="Small",
            isSubtle=True,
        )
    )
    message = data.field_errors.get(DEFAULT_SWITCH, "")
    if message:
        items.append(error_text(clip(message, 300)))
    return items


def render_settings_card(data: SettingsCardData) -> Json:
    card = load_template("settings")
    ids = {"setup_id": data.setup_id} if data.setup_id else {"connection_id": data.connection_id}
    if data.setup_id:
        slot(card, "intro")["text"] = (
            "Choose how this connection works. You can change all of it later with **settings**."
        )
    else:
        slot(card, "title")["text"] = f"Settings: {md_escape(clip(data.connection_name, 100))}"
        slot(card, "intro")["text"] = (
            "Change what you need and choose **Save**. Changes apply from the next run."
        )
    if data.form_error:
        slot(card, "form_error")["inlines"] = [
            {"type": "TextRun", "text": clip(data.form_error, 300), "color": "Attention"}
        ]

    inputs = {node["id"]: node for node in card["body"] if node.get("id") in INPUT_IDS}
    name = _displayable(data.connection_name)
    if name:
        inputs["connection_name"]["value"] = name
    inputs["plan"]["choices"] = [{"title": _plan_title(p), "value": p.id} for p in PLANS]
    if any(p.id == data.plan for p in PLANS):
        inputs["plan"]["value"] = data.plan
    zones = timezone_choices(always=(data.timezone, data.xero_timezone, data.dynamics_timezone))
    inputs["timezone"]["choices"] = [{"title": title, "value": value} for value, title in zones]
    if zone(data.timezone):
        inputs["timezone"]["value"] = data.timezone
    inputs["notify_mode"]["choices"] = [{"title": NOTIFY_TITLES[m], "value": m.value} for m in NotifyMode]
    inputs["notify_mode"]["value"] = data.notify_mode.value

    for field in INPUT_IDS:
        message = data.field_errors.get(field, "")
        if message:
            slot(card, f"error.{field}")["items"] = [error_text(clip(message, 300))]
    slot(card, "warnings")["items"] = [
        plain(("⚠️ " if i == 0 else "") + w, color="Warning", size="Small")
        for i, w in enumerate(timezone_warnings(data))
    ]
    if data.connection_id:
        slot(card, "switches")["items"] = _switches(data)
    slot(card, "last_run")["text"] = f"Last run (UTC): {format_utc(data.last_run_at).removesuffix(' UTC')}"
    slot(card, "save").update(submit("Save", CardVerb.SETTINGS_SUBMIT, with_inputs=True, hidden=ids))
    slot(card, "cancel").update(submit("Cancel", CardVerb.SETTINGS_CANCEL, hidden=ids))
    return finish(card)
