"""The fields of card submits: what each input may hold, and the sentence shown under it when it doesn't.

Each validator takes whatever arrived (anything can, whatever the card's `isRequired` and `maxLength`
said) and returns the clean value or raises ValueError with the message for that input; `cards.submits`
turns those into `ValidationFailed.field_errors`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Annotated

from pydantic import BeforeValidator

from bot.commands import COMMANDS_BY_NAME, parse_command
from bot.storage.base import NotifyMode
from bot.sync.plans import PLANS, PLANS_BY_ID
from cards.timezones import valid_zones

NAME_MAX = 100
ID_MAX = 100
CODE_MIN, CODE_MAX = 4, 32
COMMAND_TEXT_MAX = 200

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_CODE = re.compile(r"[A-Za-z0-9-]+")
# Bidirectional overrides and isolates make a name read differently from what it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

STALE_CARD = "This card is out of date. Type the command again to get a fresh one."


def _require_str(value: object, message: str) -> str:
    if not isinstance(value, str):
        raise ValueError(message)
    return value


def _has_control(text: str) -> bool:
    return any(ch in _BIDI_CONTROLS or unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in text)


def _identifier(value: object) -> str:
    text = _require_str(value, STALE_CARD).strip()
    if not text or len(text) > ID_MAX or not _ID.fullmatch(text):
        raise ValueError(STALE_CARD)
    return text


def _connection_name(value: object) -> str:
    text = _require_str(value, "Give the connection a name.")
    if len(text) > NAME_MAX * 4:
        # Checked before normalising so an enormous value costs nothing.
        raise ValueError(f"Keep the name to {NAME_MAX} characters or fewer.")
    text = unicodedata.normalize("NFC", text).strip()
    if not text:
        raise ValueError("Give the connection a name.")
    if _has_control(text):
        raise ValueError("The name can't contain line breaks, tabs or other control characters.")
    if len(text) > NAME_MAX:
        raise ValueError(f"Keep the name to {NAME_MAX} characters or fewer.")
    return text


def _plan(value: object) -> str:
    names = ", ".join(p.name for p in PLANS)
    text = _require_str(value, f"Choose a plan: {names}.").strip()
    if text not in PLANS_BY_ID:
        raise ValueError(f"Choose a plan: {names}.")
    return text


def _timezone(value: object) -> str:
    message = "Choose a timezone from the list, for example Europe/London."
    text = _require_str(value, message).strip()
    if len(text) > 64 or text not in valid_zones():
        raise ValueError(message)
    return text


def _notify_mode(value: object) -> NotifyMode:
    message = "Choose when you want to hear about runs."
    text = _require_str(value, message).strip()
    try:
        return NotifyMode(text)
    except ValueError:
        raise ValueError(message) from None


def _toggle(value: object) -> bool:
    """An Input.Toggle's value: the strings "true"/"false" (its valueOn/valueOff), or a JSON boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError("Switch it on or off.")


Toggle = Annotated[bool, BeforeValidator(_toggle)]


def _verification_code(value: object) -> str:
    message = "Type the code shown on the page after you signed in."
    text = _require_str(value, message)
    if len(text) > CODE_MAX * 4:
        raise ValueError(message)
    text = "".join(text.split())
    if not (CODE_MIN <= len(text) <= CODE_MAX) or not _CODE.fullmatch(text):
        raise ValueError(message)
    return text


def _choice(message: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _require_str(value, message).strip()
        if not text or len(text) > ID_MAX or not _ID.fullmatch(text):
            raise ValueError(message)
        return text

    return check


def _command_name(value: object) -> str:
    text = _require_str(value, STALE_CARD).strip().casefold()
    command = COMMANDS_BY_NAME.get(text)
    if command is None or not command.takes_name:
        raise ValueError(STALE_CARD)
    return command.name


def _command_text(value: object) -> str:
    text = _require_str(value, STALE_CARD)
    if len(text) > COMMAND_TEXT_MAX or _has_control(text) or parse_command(text).command is None:
        raise ValueError(STALE_CARD)
    return text.strip()


IdField = Annotated[str, BeforeValidator(_identifier)]
OrgField = Annotated[str, BeforeValidator(_choice("Choose an organisation from the list."))]
EnvField = Annotated[str, BeforeValidator(_choice("Choose an environment from the list."))]
ConnectionChoiceField = Annotated[str, BeforeValidator(_choice("Choose a connection from the list."))]


ConnectionNameField = Annotated[str, BeforeValidator(_connection_name)]
PlanField = Annotated[str, BeforeValidator(_plan)]
TimezoneField = Annotated[str, BeforeValidator(_timezone)]
NotifyModeField = Annotated[NotifyMode, BeforeValidator(_notify_mode)]
VerificationCodeField = Annotated[str, BeforeValidator(_verification_code)]
CommandNameField = Annotated[str, BeforeValidator(_command_name)]
CommandTextField = Annotated[str, BeforeValidator(_command_text)]
