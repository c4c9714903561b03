"""Card cases of the conversation's start: welcome, help, the setup checklist, the settings form."""

from __future__ import annotations

from collections.abc import Callable

from cards import (
    HelpCardData,
    SettingsCardData,
    SetupCardData,
    SetupStep,
    SolutionHelp,
    StepState,
    WelcomeCardData,
    render_help_card,
    render_settings_card,
    render_setup_card,
    render_welcome_card,
)
from tests.unit.card_fixtures import ENVS, EVIL, ORGS, SETUP, T0, XERO_DONE, Json, make_connection

SETUP_CASES: dict[str, Callable[[], Json]] = {
    "welcome": lambda: render_welcome_card(WelcomeCardData()),
    "welcome in a channel": lambda: render_welcome_card(
        WelcomeCardData(needs_mention=True, bot_name="Xero Sync")
    ),
    "help": lambda: render_help_card(HelpCardData()),
    "help in a channel": lambda: render_help_card(HelpCardData(needs_mention=True)),
    "setup: start": lambda: render_setup_card(
        SETUP.model_copy(update={"xero_start_url": "https://bot.example/oauth/xero/start?s=1"})
    ),
    "setup: code": lambda: render_setup_card(
        SETUP.model_copy(
            update={
                "xero_start_url": "https://bot.example/oauth/xero/start?s=1",
                "ask_verification_code": True,
                "field_errors": {"verification_code": "That code doesn't match. Check it and try again."},
            }
        )
    ),
    "setup: code in Teams": lambda: render_setup_card(
        SETUP.model_copy(
            update={
                "xero_start_url": "https://bot.example/oauth/xero/start?s=1",
                "signin_popup": True,
                "ask_verification_code": True,
            }
        )
    ),
    "setup: several orgs": lambda: render_setup_card(
        SETUP.model_copy(
            update={"xero_orgs": ORGS, "field_errors": {"xero_tenant_id": "Choose an organisation."}}
        )
    ),
    "setup: xero problem": lambda: render_setup_card(
        SETUP.mark(SetupStep.XERO, StepState.ATTENTION, "access denied").model_copy(
            update={"problem": "Xero said access was denied. Try again and choose Allow access."}
        )
    ),
    "setup: solution missing": lambda: render_setup_card(
        XERO_DONE.mark(SetupStep.SOLUTION, StepState.ATTENTION, "not installed yet").model_copy(
            update={
                "current": SetupStep.SOLUTION,
                "solution": SolutionHelp(
                    appsource_url="https://appsource.microsoft.com/product/dynamics-365/xdc",
                    solution_zip_url="https://bot.example/solution/XeroDynamicsConnector_managed.zip",
                    missing_privileges=tuple(f"prvCreatexdc_table{i}" for i in range(20)),
                ),
                "problem": "The solution is not in this environment yet.",
            }
        )
    ),
    "setup: solution missing, several environments": lambda: render_setup_card(
        XERO_DONE.mark(SetupStep.SOLUTION, StepState.ATTENTION, "not installed yet").model_copy(
            update={
                "current": SetupStep.SOLUTION,
                "other_environments": True,
                "problem": "Our solution isn't installed in Environment 2 yet.",
            }
        )
    ),
    "setup: solution, no links": lambda: render_setup_card(
        XERO_DONE.model_copy(update={"current": SetupStep.SOLUTION})
    ),
    "setup: dynamics sign-in": lambda: render_setup_card(
        XERO_DONE.mark(SetupStep.SOLUTION, StepState.DONE, "version 1.0.0.3").model_copy(
            update={
                "current": SetupStep.DYNAMICS,
                "dynamics_start_url": "https://bot.example/oauth/dynamics/start?s=2",
                "ask_verification_code": True,
            }
        )
    ),
    "setup: dynamics sign-in in Teams": lambda: render_setup_card(
        XERO_DONE.mark(SetupStep.SOLUTION, StepState.DONE, "version 1.0.0.3").model_copy(
            update={
                "current": SetupStep.DYNAMICS,
                "dynamics_start_url": "https://bot.example/oauth/dynamics/start?s=2",
                "signin_popup": True,
            }
        )
    ),
    "setup: environments": lambda: render_setup_card(
        XERO_DONE.model_copy(
            update={
                "current": SetupStep.DYNAMICS,
                "dynamics_envs": ENVS,
                "field_errors": {"environment_id": "Choose an environment from the list."},
            }
        )
    ),
    "setup: one environment": lambda: render_setup_card(
        XERO_DONE.model_copy(update={"current": SetupStep.DYNAMICS, "dynamics_envs": ENVS[:1]})
    ),
    "setup: dynamics problem": lambda: render_setup_card(
        XERO_DONE.mark(SetupStep.DYNAMICS, StepState.ATTENTION, "").model_copy(
            update={"current": SetupStep.DYNAMICS, "problem": "You have no Dynamics 365 environment."}
        )
    ),
    "setup: settings": lambda: render_setup_card(
        XERO_DONE.model_copy(update={"current": SetupStep.SETTINGS})
    ),
    "setup: first sync": lambda: render_setup_card(
        XERO_DONE.model_copy(
            update={"current": SetupStep.FIRST_SYNC, "connection_id": "conn-1", "connection_name": EVIL}
        )
    ),
    "setup: first sync failed": lambda: render_setup_card(
        XERO_DONE.mark(SetupStep.FIRST_SYNC, StepState.ATTENTION, "failed").model_copy(
            update={
                "current": SetupStep.FIRST_SYNC,
                "connection_id": "conn-1",
                "problem": "Dynamics 365 was busy.",
            }
        )
    ),
    "setup: finished": lambda: render_setup_card(
        SetupCardData(
            setup_id="setup-1",
            steps=tuple(
                SetupCardData(setup_id="x").mark(step, StepState.DONE, "ok").steps[i]
                for i, step in enumerate(SetupStep)
            ),
            finished=True,
            connection_id="conn-1",
            connection_name="Acme Ltd",
            schedule_in_words="every 10 minutes",
        )
    ),
    "setup: cancelled": lambda: render_setup_card(XERO_DONE.model_copy(update={"cancelled": True})),
    "settings: setup": lambda: render_settings_card(
        SettingsCardData.for_setup(
            "setup-1", suggested_name="Acme Ltd (NZ)", xero_timezone="Pacific/Auckland"
        )
    ),
    "settings: errors and warnings": lambda: render_settings_card(
        SettingsCardData.from_connection(
            make_connection(),
            timezone="Europe/London",
            dynamics_timezone="America/New_York",
            connection_name="   ",
            field_errors={
                "connection_name": "Give the connection a name.",
                "plan": "Choose a plan.",
                "timezone": "Choose a timezone from the list, for example Europe/London.",
                "notify_mode": "Choose when you want to hear about runs.",
            },
            form_error="Someone else saved these settings first: check them and save again.",
            now=T0,
        )
    ),
    "settings: worst case size": lambda: render_settings_card(
        SettingsCardData.from_connection(
            make_connection(name="W" * 100),
            timezone="America/Argentina/Buenos_Aires",
            dynamics_timezone="America/Indiana/Knox",
            field_errors={k: "x" * 200 for k in ("connection_name", "plan", "timezone", "notify_mode")},
            form_error="y" * 300,
            now=T0,
        )
    ),
    "settings: unknown stored zone": lambda: render_settings_card(
        SettingsCardData(connection_id="conn-1", connection_name="Acme", timezone="Mars/Olympus", plan="gone")
    ),
}
