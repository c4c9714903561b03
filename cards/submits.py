"""What a card sends back, validated on the server: one frozen pydantic model per verb.

Client-side checks (`isRequired`, `maxLength`) are hints only; anything can arrive in an activity's
`value`. `parse_submit` is the single entry point: it dispatches on `verb` and raises
`bot.errors.ValidationFailed` whose `field_errors` maps an input id to a message the card can show
under that input. Nothing else escapes it, whatever the payload.

Models of verbs sent from a card that also has unrelated inputs ignore extra keys, because Teams
sends every input of the card with every Action.Submit; the others forbid them.

One Action.Submit carries no verb, by design: Teams' sign-in action (`teams_signin_data`), which
Teams does not send to the bot at all (it opens its sign-in popup; the proof comes back as a
`signin/verifyState` invoke). `is_teams_signin` recognises exactly that shape and nothing more; should
such data ever arrive as a message, it is not a submit and `parse_submit` refuses it like any other.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, cast
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.commands import COMMANDS_BY_NAME, parse_command
from bot.errors import ValidationFailed
from bot.storage.base import NotifyMode
from bot.sync.plans import PLANS, PLANS_BY_ID
from cards.timezones import valid_zones
from cards.verbs import CardVerb

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

# Teams' documented sign-in action on an Adaptive Card: an Action.Submit whose data is
# {"msteams": {"type": "signin", "value": <url>}} (learn.microsoft.com/microsoftteams/platform,
# task-modules-and-cards/cards/cards-actions, "Adaptive Cards with signin action").
TEAMS_SIGNIN_TYPE = "signin"


def teams_signin_data(url: str) -> dict[str, Any]:
    """The `data` of an Action.Submit that makes Teams open its sign-in popup at `url`."""
    return {"msteams": {"type": TEAMS_SIGNIN_TYPE, "value": url}}


def is_teams_signin(data: object) -> bool:
    """Whether an Action.Submit's data is exactly Teams' sign-in action (no verb, no other keys,
    an absolute http(s) URL): the one submit our cards send that the bot never receives."""
    if not isinstance(data, dict) or set(data) != {"msteams"}:
        return False
    inner = data["msteams"]
    if not isinstance(inner, dict) or set(inner) != {"type", "value"} or inner["type"] != TEAMS_SIGNIN_TYPE:
        return False
    url = inner["value"]
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


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


class SubmitBase(BaseModel):
    """Base of every submit. `missing_messages` names what to say when an input was left empty."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    missing_messages: ClassVar[dict[str, str]] = {}


class _FromCardWithInputs(SubmitBase):
    model_config = ConfigDict(frozen=True, extra="ignore")


class SetupStartSubmit(SubmitBase):
    verb: Literal[CardVerb.SETUP_START]


class SetupCancelSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.SETUP_CANCEL]
    setup_id: IdField


class XeroRetrySubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.XERO_RETRY]
    setup_id: IdField


class XeroPickOrgSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.XERO_PICK_ORG]
    setup_id: IdField
    xero_tenant_id: OrgField
    missing_messages: ClassVar[dict[str, str]] = {"xero_tenant_id": "Choose an organisation from the list."}


class VerifyCodeSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.VERIFY_CODE]
    setup_id: IdField
    verification_code: Annotated[str, BeforeValidator(_verification_code)]
    missing_messages: ClassVar[dict[str, str]] = {
        "verification_code": "Type the code shown on the page after you signed in."
    }


class SolutionCheckAgainSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.SOLUTION_CHECK_AGAIN]
    setup_id: IdField


class SolutionInstallSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.SOLUTION_INSTALL]
    setup_id: IdField


class SolutionContinueSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.SOLUTION_CONTINUE]
    setup_id: IdField


class DynamicsRetrySubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.DYNAMICS_RETRY]
    setup_id: IdField


class DynamicsPickEnvSubmit(_FromCardWithInputs):
    verb: Literal[CardVerb.DYNAMICS_PICK_ENV]
    setup_id: IdField
    environment_id: EnvField
    missing_messages: ClassVar[dict[str, str]] = {"environment_id": "Choose an environment from the list."}


class _SetupOrConnection(SubmitBase):
    """Exactly one of `setup_id` (a form shown during setup) or `connection_id` (an existing one)."""

    setup_id: IdField | None = None
    connection_id: IdField | None = Field(default=None, validate_default=True)

    @field_validator("connection_id")
    @classmethod
    def _exactly_one(cls, value: str | None, info: ValidationInfo) -> str | None:
        has_setup = info.data.get("setup_id") is not None
        if (value is None) == (not has_setup):
            raise ValueError(STALE_CARD)
        return value


class SettingsSubmit(_SetupOrConnection):
    verb: Literal[CardVerb.SETTINGS_SUBMIT]
    connection_name: Annotated[str, BeforeValidator(_connection_name)]
    plan: Annotated[str, BeforeValidator(_plan)]
    timezone: Annotated[str, BeforeValidator(_timezone)]
    notify_mode: Annotated[NotifyMode, BeforeValidator(_notify_mode)]
    # What syncs, and the environment's default connection: only on an existing connection's card
    # (None: the card did not show the switch, so the setting stays as it is).
    sync_accounts: Toggle | None = None
    sync_tax_rates: Toggle | None = None
    sync_branding_themes: Toggle | None = None
    sync_tracking_categories: Toggle | None = None
    is_default: Toggle | None = None
    missing_messages: ClassVar[dict[str, str]] = {
        "connection_name": "Give the connection a name.",
        "plan": "Choose a plan.",
        "timezone": "Choose a timezone from the list, for example Europe/London.",
        "notify_mode": "Choose when you want to hear about runs.",
    }


class SettingsCancelSubmit(_SetupOrConnection):
    model_config = ConfigDict(frozen=True, extra="ignore")
    verb: Literal[CardVerb.SETTINGS_CANCEL]


class _ConnectionAction(SubmitBase):
    connection_id: IdField


class ConfirmDisconnectSubmit(_ConnectionAction):
    verb: Literal[CardVerb.CONFIRM_DISCONNECT]


class CancelDisconnectSubmit(_ConnectionAction):
    verb: Literal[CardVerb.CANCEL_DISCONNECT]


class PickConnectionSubmit(SubmitBase):
    verb: Literal[CardVerb.PICK_CONNECTION]
    command: Annotated[str, BeforeValidator(_command_name)]
    connection_id: ConnectionChoiceField
    missing_messages: ClassVar[dict[str, str]] = {"connection_id": "Choose a connection from the list."}


class RunNowSubmit(_ConnectionAction):
    verb: Literal[CardVerb.RUN_NOW]


class OpenSettingsSubmit(_ConnectionAction):
    verb: Literal[CardVerb.OPEN_SETTINGS]


class SolutionUpgradeSubmit(_ConnectionAction):
    verb: Literal[CardVerb.SOLUTION_UPGRADE]


class ShowStatusSubmit(_ConnectionAction):
    verb: Literal[CardVerb.SHOW_STATUS]


class ShowHistorySubmit(_ConnectionAction):
    verb: Literal[CardVerb.SHOW_HISTORY]


class ResumeSyncSubmit(_ConnectionAction):
    verb: Literal[CardVerb.RESUME_SYNC]


class ReconnectXeroSubmit(_ConnectionAction):
    verb: Literal[CardVerb.RECONNECT_XERO]


class ReconnectDynamicsSubmit(_ConnectionAction):
    verb: Literal[CardVerb.RECONNECT_DYNAMICS]


class RetryCommandSubmit(SubmitBase):
    verb: Literal[CardVerb.RETRY_COMMAND]
    command_text: Annotated[str, BeforeValidator(_command_text)]


Submit: TypeAlias = (
    SetupStartSubmit
    | SetupCancelSubmit
    | XeroRetrySubmit
    | XeroPickOrgSubmit
    | VerifyCodeSubmit
    | SolutionCheckAgainSubmit
    | SolutionInstallSubmit
    | SolutionContinueSubmit
    | DynamicsRetrySubmit
    | DynamicsPickEnvSubmit
    | SettingsSubmit
    | SettingsCancelSubmit
    | ConfirmDisconnectSubmit
    | CancelDisconnectSubmit
    | PickConnectionSubmit
    | RunNowSubmit
    | OpenSettingsSubmit
    | ShowStatusSubmit
    | SolutionUpgradeSubmit
    | ShowHistorySubmit
    | ResumeSyncSubmit
    | ReconnectXeroSubmit
    | ReconnectDynamicsSubmit
    | RetryCommandSubmit
)

SUBMIT_MODELS: Mapping[CardVerb, type[SubmitBase]] = {
    CardVerb.SETUP_START: SetupStartSubmit,
    CardVerb.SETUP_CANCEL: SetupCancelSubmit,
    CardVerb.XERO_RETRY: XeroRetrySubmit,
    CardVerb.XERO_PICK_ORG: XeroPickOrgSubmit,
    CardVerb.VERIFY_CODE: VerifyCodeSubmit,
    CardVerb.SOLUTION_CHECK_AGAIN: SolutionCheckAgainSubmit,
    CardVerb.SOLUTION_INSTALL: SolutionInstallSubmit,
    CardVerb.SOLUTION_CONTINUE: SolutionContinueSubmit,
    CardVerb.DYNAMICS_RETRY: DynamicsRetrySubmit,
    CardVerb.DYNAMICS_PICK_ENV: DynamicsPickEnvSubmit,
    CardVerb.SETTINGS_SUBMIT: SettingsSubmit,
    CardVerb.SETTINGS_CANCEL: SettingsCancelSubmit,
    CardVerb.CONFIRM_DISCONNECT: ConfirmDisconnectSubmit,
    CardVerb.CANCEL_DISCONNECT: CancelDisconnectSubmit,
    CardVerb.PICK_CONNECTION: PickConnectionSubmit,
    CardVerb.RUN_NOW: RunNowSubmit,
    CardVerb.OPEN_SETTINGS: OpenSettingsSubmit,
    CardVerb.SHOW_STATUS: ShowStatusSubmit,
    CardVerb.SOLUTION_UPGRADE: SolutionUpgradeSubmit,
    CardVerb.SHOW_HISTORY: ShowHistorySubmit,
    CardVerb.RESUME_SYNC: ResumeSyncSubmit,
    CardVerb.RECONNECT_XERO: ReconnectXeroSubmit,
    CardVerb.RECONNECT_DYNAMICS: ReconnectDynamicsSubmit,
    CardVerb.RETRY_COMMAND: RetryCommandSubmit,
}

UNKNOWN_ACTION = "I don't recognise that button. Type the command again to get a fresh card."


def _field_errors(model: type[SubmitBase], exc: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for error in exc.errors(include_url=False, include_input=False):
        loc = error["loc"]
        field = str(loc[0]) if loc else "verb"
        if field in errors:
            continue
        if error["type"] == "value_error":
            cause = error.get("ctx", {}).get("error")
            errors[field] = str(cause) if cause is not None else STALE_CARD
        elif error["type"] == "missing":
            errors[field] = model.missing_messages.get(field, STALE_CARD)
        else:
            errors[field] = STALE_CARD
    return errors


def _summary(model: type[SubmitBase], field_errors: dict[str, str]) -> str:
    """One line for the chat: a stale card first, else the only problem, else a pointer to the fields."""
    hidden = [message for field, message in field_errors.items() if field not in model.missing_messages]
    if hidden:
        return hidden[0]
    if len(field_errors) == 1:
        return next(iter(field_errors.values()))
    return "Some answers need a fix: see the messages under the fields."


class _Envelope(BaseModel):
    """Just the verb, to choose the model that validates the rest."""

    model_config = ConfigDict(frozen=True, extra="ignore")
    verb: CardVerb


def parse_submit(value: object) -> Submit:
    """The typed submit for a card action's `value`. Raises ValidationFailed, and nothing else."""
    if not isinstance(value, dict):
        raise ValidationFailed(UNKNOWN_ACTION, {"verb": UNKNOWN_ACTION})
    try:
        verb = _Envelope.model_validate(value).verb
    except ValidationError:
        raise ValidationFailed(UNKNOWN_ACTION, {"verb": UNKNOWN_ACTION}) from None
    model = SUBMIT_MODELS[verb]
    try:
        parsed = model.model_validate(value)
    except ValidationError as exc:
        field_errors = _field_errors(model, exc)
        raise ValidationFailed(_summary(model, field_errors), field_errors) from None
    return cast(Submit, parsed)
