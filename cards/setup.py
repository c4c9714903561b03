"""The setup checklist: one card, updated in place as the setup moves on.

Five steps, each waiting, done or needing attention, with a detail (the organisation's name, the
environment's name); below them, what the current step needs from the user.

Sign-in buttons open the start URL the caller gives (one per flow, single use), in one of two ways,
chosen by the caller per client (`SetupCardData.signin_popup`), with the same title either way:
- Teams: Teams' sign-in action (an Action.Submit with `msteams.type = "signin"`). Teams opens its
  sign-in popup; our callback page hands the verification code to Teams (`notifySuccess`), which
  sends it to the bot as a `signin/verifyState` invoke. The button sends nothing to the bot itself.
- Other clients (the Agents Playground): `Action.OpenUrl`. The Playground sends nothing for a signin
  action but opens an OpenUrl in a real popup; the user types the code shown on the callback page.
The typed code is offered in both cases, so a sign-in whose popup hand-over fails still completes.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from cards.base import CardData, Choice, clip
from cards.elements import (
    action_set,
    choice_set,
    error_text,
    open_url,
    plain,
    runs,
    submit,
    text,
    text_input,
)
from cards.setup_solution import solution_panel
from cards.submits import teams_signin_data
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb


class SetupStep(StrEnum):
    XERO = "xero"
    SOLUTION = "solution"
    DYNAMICS = "dynamics"
    SETTINGS = "settings"
    FIRST_SYNC = "first_sync"


class StepState(StrEnum):
    WAITING = "waiting"
    DONE = "done"
    ATTENTION = "attention"


STEP_TITLES: dict[SetupStep, str] = {
    SetupStep.XERO: "Connect to Xero",
    SetupStep.SOLUTION: "Install our solution in Dynamics 365",
    SetupStep.DYNAMICS: "Connect to Dynamics 365",
    SetupStep.SETTINGS: "Choose a name, plan and timezone",
    SetupStep.FIRST_SYNC: "First sync",
}
STATE_ICONS: dict[StepState, str] = {
    StepState.WAITING: "⏳",
    StepState.DONE: "✅",
    StepState.ATTENTION: "⚠️",
}
DEFAULT_ORDER: tuple[SetupStep, ...] = tuple(SetupStep)

CODE_INPUT = "verification_code"
ORG_INPUT = "xero_tenant_id"
ENV_INPUT = "environment_id"


class StepStatus(CardData):
    step: SetupStep
    state: StepState = StepState.WAITING
    detail: str = ""  # e.g. the organisation's name once connected


class SolutionHelp(CardData):
    """How to get our solution into the environment, and what the user still lacks."""

    appsource_url: str = ""
    solution_zip_url: str = ""
    missing_privileges: tuple[str, ...] = ()
    env_name: str = ""
    state: str = ""  # missing / older / current / newer ("" before the first check)
    installed_version: str = ""
    shipped_version: str = ""
    compatible: bool = False
    can_install: bool = False
    missing_import: tuple[str, ...] = ()  # why "Install it for me" is not offered
    installing: bool = False
    progress: str = ""

    @field_validator("appsource_url", "solution_zip_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)


def _check_url(value: str) -> str:
    if value:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
    return value


class SetupCardData(CardData):
    setup_id: str
    steps: tuple[StepStatus, ...] = tuple(StepStatus(step=s) for s in DEFAULT_ORDER)
    # The step whose actions are shown; None once finished or cancelled.
    current: SetupStep | None = SetupStep.XERO
    problem: str = ""  # what went wrong in the current step, in words for the user
    xero_start_url: str = ""
    dynamics_start_url: str = ""
    # True: sign-in buttons open Teams' sign-in popup; False: they are Action.OpenUrl (see the module doc).
    signin_popup: bool = False
    ask_verification_code: bool = False
    xero_orgs: tuple[Choice, ...] = ()
    dynamics_envs: tuple[Choice, ...] = ()
    # On the solution step: the sign-in offered several environments, so another can be chosen.
    other_environments: bool = False
    solution: SolutionHelp = SolutionHelp()
    connection_id: str = ""  # known from the settings step on
    connection_name: str = ""
    schedule_in_words: str = ""  # for the closing line, e.g. "every 10 minutes"
    field_errors: dict[str, str] = Field(default_factory=dict)
    finished: bool = False
    cancelled: bool = False

    @field_validator("xero_start_url", "dynamics_start_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("steps")
    @classmethod
    def _unique(cls, value: tuple[StepStatus, ...]) -> tuple[StepStatus, ...]:
        seen = [s.step for s in value]
        if len(seen) != len(set(seen)):
            raise ValueError("each step appears once")
        return value

    def mark(self, step: SetupStep, state: StepState, detail: str = "") -> SetupCardData:
        """A copy with one step's state and detail changed (the step is added if missing)."""
        updated = StepStatus(step=step, state=state, detail=detail)
        steps = tuple(updated if s.step == step else s for s in self.steps)
        if step not in {s.step for s in self.steps}:
            steps = (*steps, updated)
        return self.model_copy(update={"steps": steps})


def _step_row(status: StepStatus, is_current: bool) -> Json:
    title_props: dict[str, str] = {"weight": "Bolder"} if is_current else {}
    lines: list[Json] = [runs((STEP_TITLES[status.step], title_props))]
    if status.detail:
        lines.append(plain(clip(status.detail, 200), isSubtle=True, size="Small"))
    return {
        "type": "ColumnSet",
        "spacing": "Small",
        "columns": [
            {"type": "Column", "width": "auto", "items": [text(STATE_ICONS[status.state])]},
            {"type": "Column", "width": "stretch", "items": lines},
        ],
    }


def _signin_button(title: str, url: str, data: SetupCardData) -> Json:
    """The button that starts a sign-in at `url`, as the client can open it (see the module doc)."""
    if data.signin_popup:
        return {"type": "Action.Submit", "title": title, "data": teams_signin_data(url)}
    return open_url(title, url)


def _with_error(element: Json, data: SetupCardData) -> list[Json]:
    message = data.field_errors.get(str(element["id"]), "")
    return [element, error_text(clip(message, 300))] if message else [element]


def _code_entry(data: SetupCardData) -> list[Json]:
    if not data.ask_verification_code:
        return []
    code = text_input(
        CODE_INPUT,
        "Verification code",
        max_length=32,
        placeholder="The code shown after you signed in",
        regex=r"^\s*[A-Za-z0-9-]{4,32}\s*$",
        error_message="Type the code shown on the page after you signed in.",
    )
    return [
        text(
            "Signed in, but no confirmation here yet? Type the code the sign-in page showed you.",
            spacing="Medium",
        ),
        *_with_error(code, data),
        action_set([submit("Verify", CardVerb.VERIFY_CODE, with_inputs=True, setup_id=data.setup_id)]),
    ]


def _choices(input_id: str, label: str, options: tuple[Choice, ...], data: SetupCardData) -> list[Json]:
    style = "expanded" if len(options) <= 5 else "compact"
    element = choice_set(
        input_id,
        label,
        ((o.value, clip(o.title, 120)) for o in options),
        value=options[0].value if len(options) == 1 else None,
        style=style,
        error_message=f"{label}: choose one.",
    )
    return _with_error(element, data)


def _problem(data: SetupCardData) -> list[Json]:
    if not data.problem:
        return []
    return [plain("⚠️ " + clip(data.problem, 600), color="Attention")]


def _xero_panel(data: SetupCardData) -> list[Json]:
    items: list[Json] = []
    if data.xero_orgs:
        items.append(text("Your sign-in covers several Xero organisations. Which one should I sync?"))
        items += _choices(ORG_INPUT, "Xero organisation", data.xero_orgs, data)
        items.append(
            action_set(
                [
                    submit(
                        "Use this organisation",
                        CardVerb.XERO_PICK_ORG,
                        with_inputs=True,
                        setup_id=data.setup_id,
                    )
                ]
            )
        )
    else:
        items.append(
            text(
                "Sign in to Xero and allow access. I ask to read your organisation's settings: "
                "chart of accounts, tax rates and branding themes."
            )
        )
        if data.xero_start_url:
            items.append(action_set([_signin_button("Connect to Xero", data.xero_start_url, data)]))
        items += _code_entry(data)
    items += _problem(data)
    if data.problem:
        items.append(action_set([submit("Try again", CardVerb.XERO_RETRY, setup_id=data.setup_id)]))
    return items


def _dynamics_panel(data: SetupCardData) -> list[Json]:
    items: list[Json] = []
    if data.dynamics_envs:
        items.append(text("Which Dynamics 365 environment should receive the data?"))
        items += _choices(ENV_INPUT, "Dynamics 365 environment", data.dynamics_envs, data)
        items.append(
            action_set(
                [
                    submit(
                        "Use this environment",
                        CardVerb.DYNAMICS_PICK_ENV,
                        with_inputs=True,
                        setup_id=data.setup_id,
                    )
                ]
            )
        )
    else:
        items.append(
            text("Sign in to Dynamics 365 with your work account; next you'll pick the environment.")
        )
        if data.dynamics_start_url:
            button = _signin_button("Connect to Dynamics 365", data.dynamics_start_url, data)
            items.append(action_set([button]))
        items += _code_entry(data)
    items += _problem(data)
    if data.problem:
        items.append(action_set([submit("Try again", CardVerb.DYNAMICS_RETRY, setup_id=data.setup_id)]))
    return items


def _settings_panel(data: SetupCardData) -> list[Json]:
    return [text("Nearly there: fill in the settings card below and choose **Save**."), *_problem(data)]


def _first_sync_panel(data: SetupCardData) -> list[Json]:
    items: list[Json] = []
    if not data.problem:
        items.append(text("The first sync is running. I'll post the result here when it's done."))
    items += _problem(data)
    if data.problem and data.connection_id:
        items.append(action_set([submit("Try again", CardVerb.RUN_NOW, connection_id=data.connection_id)]))
    return items


_PANELS = {
    SetupStep.XERO: _xero_panel,
    SetupStep.SOLUTION: lambda data: solution_panel(data, _problem(data)),
    SetupStep.DYNAMICS: _dynamics_panel,
    SetupStep.SETTINGS: _settings_panel,
    SetupStep.FIRST_SYNC: _first_sync_panel,
}


def _closing(data: SetupCardData) -> list[Json]:
    if data.cancelled:
        return [text("Setup cancelled. Nothing was kept. Type **connect** to start again.")]
    schedule = f" It syncs {data.schedule_in_words}." if data.schedule_in_words else ""
    items: list[Json] = [text(f"All set!{schedule} Type **status** any time to see how it's doing.")]
    if data.connection_id:
        items.append(
            action_set([submit("Show status", CardVerb.SHOW_STATUS, connection_id=data.connection_id)])
        )
    return items


def render_setup_card(data: SetupCardData) -> Json:
    card = load_template("setup")
    if data.cancelled:
        slot(card, "title")["text"] = "Setup cancelled"
    elif data.finished:
        slot(card, "title")["text"] = "Connection ready"
    if data.connection_name:
        slot(card, "subtitle")["inlines"] = [
            {"type": "TextRun", "text": clip(data.connection_name, 100), "isSubtle": True}
        ]
    current = None if (data.finished or data.cancelled) else data.current
    slot(card, "steps")["items"] = [_step_row(s, s.step == current) for s in data.steps]
    panel = slot(card, "panel")
    cancel = slot(card, "cancel")
    if current is None:
        panel["items"] = _closing(data)
        card["actions"] = []
    else:
        panel["items"] = _PANELS[current](data)
        cancel.update(submit("Cancel setup", CardVerb.SETUP_CANCEL, setup_id=data.setup_id))
    return finish(card)
