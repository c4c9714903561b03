"""Every Adaptive Card the bot sends: a JSON template, a data model and a pure render function each.

Render functions return Adaptive Card 1.5 dicts; `parse_submit` validates what comes back. No
botbuilder here: the Teams layer wraps the dicts into attachments.
"""

from cards.base import CardData, Choice
from cards.notices import (
    AlertCardData,
    MessageCardData,
    MessageTone,
    render_alert_card,
    render_message_card,
)
from cards.prompts import (
    ConnectionChoiceCardData,
    DisconnectCardData,
    render_connection_choice_card,
    render_disconnect_card,
)
from cards.runs import (
    HistoryCardData,
    ProgressCardData,
    RunResultCardData,
    render_history_card,
    render_progress_card,
    render_run_result_card,
)
from cards.settings import SettingsCardData, render_settings_card
from cards.setup import (
    SetupCardData,
    SetupStep,
    SolutionHelp,
    StepState,
    StepStatus,
    render_setup_card,
)
from cards.status import StatusCardData, render_status_card
from cards.submits import Submit, parse_submit
from cards.verbs import CardVerb
from cards.welcome import HelpCardData, WelcomeCardData, render_help_card, render_welcome_card

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"

__all__ = [
    "CARD_CONTENT_TYPE",
    "AlertCardData",
    "CardData",
    "CardVerb",
    "Choice",
    "ConnectionChoiceCardData",
    "DisconnectCardData",
    "HelpCardData",
    "HistoryCardData",
    "MessageCardData",
    "MessageTone",
    "ProgressCardData",
    "RunResultCardData",
    "SettingsCardData",
    "SetupCardData",
    "SetupStep",
    "SolutionHelp",
    "StatusCardData",
    "StepState",
    "StepStatus",
    "Submit",
    "WelcomeCardData",
    "parse_submit",
    "render_alert_card",
    "render_connection_choice_card",
    "render_disconnect_card",
    "render_help_card",
    "render_history_card",
    "render_message_card",
    "render_progress_card",
    "render_run_result_card",
    "render_settings_card",
    "render_setup_card",
    "render_status_card",
    "render_welcome_card",
]
