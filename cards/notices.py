"""Cards that tell: an alert about a connection that needs attention, and a plain message."""

from __future__ import annotations

from enum import StrEnum

from bot.commands import parse_command
from bot.sync.ports import AttentionReason
from cards.base import CardData, clip
from cards.elements import md_escape, plain_lines, submit
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb

# Per reason: title, what it means for the user, and the buttons that fix it.
ALERTS: dict[AttentionReason, tuple[str, str, tuple[tuple[str, CardVerb], ...]]] = {
    AttentionReason.XERO_RECONNECT: (
        "Xero needs you to sign in again",
        "Xero no longer accepts this connection's sign-in, so runs are on hold. Reconnect to carry on.",
        (("Reconnect Xero", CardVerb.RECONNECT_XERO),),
    ),
    AttentionReason.DYNAMICS_RECONNECT: (
        "Dynamics 365 needs you to sign in again",
        "Dynamics 365 no longer accepts this connection's sign-in, so runs are on hold. Reconnect to carry on.",
        (("Reconnect Dynamics 365", CardVerb.RECONNECT_DYNAMICS),),
    ),
    AttentionReason.XERO_TOKEN_EXPIRING: (
        "The Xero sign-in expires soon",
        "Xero ends a sign-in that has not been used for 60 days. A successful run renews it; "
        "or reconnect now.",
        (("Run now", CardVerb.RUN_NOW), ("Reconnect Xero", CardVerb.RECONNECT_XERO)),
    ),
    AttentionReason.DYNAMICS_SIGNIN_EXPIRING: (
        "The Dynamics 365 sign-in expires soon",
        "Microsoft ends a sign-in that has not been used for 90 days, and renewing this one did not "
        "work. Reconnect Dynamics 365 to keep the connection working.",
        (("Reconnect Dynamics 365", CardVerb.RECONNECT_DYNAMICS),),
    ),
    AttentionReason.REPEATED_FAILURES: (
        "The last runs failed",
        "Several runs in a row failed. The history shows what went wrong.",
        (("History", CardVerb.SHOW_HISTORY), ("Run now", CardVerb.RUN_NOW)),
    ),
    AttentionReason.TIMEZONE_MISMATCH: (
        "The timezones disagree",
        "Xero, Dynamics 365 and this connection do not keep the same time, so dates near midnight "
        "can differ. Check the connection's timezone in its settings.",
        (("Open settings", CardVerb.OPEN_SETTINGS),),
    ),
    AttentionReason.XERO_DAILY_LIMIT: (
        "Xero's daily limit is nearly used up",
        "Xero allows 5,000 API calls a day per organisation. When they run out, runs wait until "
        "Xero allows more. A plan with fewer runs a day uses fewer calls.",
        (("Open settings", CardVerb.OPEN_SETTINGS), ("Status", CardVerb.SHOW_STATUS)),
    ),
    AttentionReason.TENANT_DISCONNECTED: (
        "The Xero organisation was disconnected",
        "This app was disconnected from the organisation in Xero, so runs are on hold. "
        "Reconnect to give access again.",
        (("Reconnect Xero", CardVerb.RECONNECT_XERO),),
    ),
}


class AlertCardData(CardData):
    connection_id: str
    connection_name: str
    reason: AttentionReason
    detail: str = ""  # what the sync core saw, in words


def render_alert_card(data: AlertCardData) -> Json:
    title, explanation, buttons = ALERTS[data.reason]
    card = load_template("alert")
    slot(card, "title")["text"] = f"⚠️ {title}"
    slot(card, "name")["inlines"] = [
        {"type": "TextRun", "text": clip(data.connection_name, 100), "isSubtle": True}
    ]
    slot(card, "explanation")["text"] = explanation
    if data.detail:
        slot(card, "detail")["inlines"] = [
            {"type": "TextRun", "text": clip(data.detail, 500), "size": "Small"}
        ]
    card["actions"] = [submit(label, verb, connection_id=data.connection_id) for label, verb in buttons]
    return finish(card)


class MessageTone(StrEnum):
    INFO = "info"
    SUCCESS = "success"
    WARNING = "warning"
    ERROR = "error"


TONE_STYLE: dict[MessageTone, tuple[str, str]] = {
    MessageTone.INFO: ("", "Default"),
    MessageTone.SUCCESS: ("✅ ", "Good"),
    MessageTone.WARNING: ("⚠️ ", "Warning"),
    MessageTone.ERROR: ("❌ ", "Attention"),
}


class MessageCardData(CardData):
    title: str
    text: str = ""
    tone: MessageTone = MessageTone.INFO
    # The command to run again from "Try again" (e.g. "status Acme"); no button when empty.
    retry_command: str = ""


def render_message_card(data: MessageCardData) -> Json:
    icon, color = TONE_STYLE[data.tone]
    card = load_template("message")
    title = slot(card, "title")
    title["text"] = icon + md_escape(clip(data.title, 150))
    title["color"] = color
    if data.text:
        slot(card, "text")["items"] = plain_lines(clip(data.text, 1500, keep_lines=True))
    retry = data.retry_command.strip()
    if retry and parse_command(retry).command is not None:
        slot(card, "retry").update(submit("Try again", CardVerb.RETRY_COMMAND, command_text=clip(retry, 200)))
    else:
        card["actions"] = []
    return finish(card)
