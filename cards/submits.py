"""What a card sends back, validated on the server: one frozen pydantic model per verb.

Client-side checks (`isRequired`, `maxLength`) are hints only; anything can arrive in an activity's
`value`. `parse_submit` is the single entry point: it dispatches on `verb` and raises
`bot.errors.ValidationFailed` whose `field_errors` maps an input id to a message the card can show
under that input. Nothing else escapes it, whatever the payload.

The fields' validators live in `cards.submit_fields`; the models, listed once in the `Submit` union, here.

Models of verbs sent from a card that also has unrelated inputs ignore extra keys, because Teams
sends every input of the card with every Action.Submit; the others forbid them.

One Action.Submit carries no verb, by design: Teams' sign-in action (`teams_signin_data`), which
Teams does not send to the bot at all (it opens its sign-in popup; the proof comes back as a
`signin/verifyState` invoke). `is_teams_signin` recognises exactly that shape and nothing more; should
such data ever arrive as a message, it is not a submit and `parse_submit` refuses it like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, TypeAlias, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails

from bot.errors import ValidationFailed
from cards.submit_fields import NAME_MAX as NAME_MAX  # the card templates' limit, re-exported
from cards.submit_fields import (
    STALE_CARD,
    CommandNameField,
    CommandTextField,
    ConnectionChoiceField,
    ConnectionNameField,
    EnvField,
    IdField,
    NotifyModeField,
    OrgField,
    PlanField,
    TimezoneField,
    Toggle,
    VerificationCodeField,
)
from cards.verbs import CardVerb

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
    verification_code: VerificationCodeField
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
    connection_name: ConnectionNameField
    plan: PlanField
    timezone: TimezoneField
    notify_mode: NotifyModeField
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
    command: CommandNameField
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
    command_text: CommandTextField


# The one list of submit models. pydantic picks the model by `verb` (a tagged union, no trial of each
# model in turn); `SUBMIT_MODELS` is derived from it for the error messages.
Submit: TypeAlias = Annotated[
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
    | RetryCommandSubmit,
    Field(discriminator="verb"),
]
SUBMITS: TypeAdapter[Submit] = TypeAdapter(Submit)


def _models_by_verb() -> dict[CardVerb, type[SubmitBase]]:
    union = get_args(Submit)[0]
    models: dict[CardVerb, type[SubmitBase]] = {}
    for model in get_args(union):
        (verb,) = get_args(model.model_fields["verb"].annotation)
        models[CardVerb(verb)] = model
    return models


SUBMIT_MODELS: Mapping[CardVerb, type[SubmitBase]] = MappingProxyType(_models_by_verb())
# The union's errors are located under the tag: the verb's value, which names the model.
_MODEL_OF_TAG: dict[object, type[SubmitBase]] = {verb.value: model for verb, model in SUBMIT_MODELS.items()}

UNKNOWN_ACTION = "I don't recognise that button. Type the command again to get a fresh card."


def _field_errors(model: type[SubmitBase], errors: list[ErrorDetails]) -> dict[str, str]:
    field_errors: dict[str, str] = {}
    for error in errors:
        loc = error["loc"][1:]  # the first item is the union's tag (the verb)
        field = str(loc[0]) if loc else "verb"
        if field in field_errors:
            continue
        if error["type"] == "value_error":
            cause = error.get("ctx", {}).get("error")
            field_errors[field] = str(cause) if cause is not None else STALE_CARD
        elif error["type"] == "missing":
            field_errors[field] = model.missing_messages.get(field, STALE_CARD)
        else:
            field_errors[field] = STALE_CARD
    return field_errors


def _summary(model: type[SubmitBase], field_errors: dict[str, str]) -> str:
    """One line for the chat: a stale card first, else the only problem, else a pointer to the fields."""
    hidden = [message for field, message in field_errors.items() if field not in model.missing_messages]
    if hidden:
        return hidden[0]
    if len(field_errors) == 1:
        return next(iter(field_errors.values()))
    return "Some answers need a fix: see the messages under the fields."


def parse_submit(value: object) -> Submit:
    """The typed submit for a card action's `value`. Raises ValidationFailed, and nothing else."""
    if not isinstance(value, dict):
        raise ValidationFailed(UNKNOWN_ACTION, {"verb": UNKNOWN_ACTION})
    try:
        return SUBMITS.validate_python(value)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
    # No verb, or one no model has (pydantic's union_tag_not_found / union_tag_invalid, located at ()).
    model = _MODEL_OF_TAG.get(errors[0]["loc"][0]) if errors and errors[0]["loc"] else None
    if model is None:
        raise ValidationFailed(UNKNOWN_ACTION, {"verb": UNKNOWN_ACTION}) from None
    field_errors = _field_errors(model, errors)
    raise ValidationFailed(_summary(model, field_errors), field_errors) from None
