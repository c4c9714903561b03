"""Every card in several variants (errors shown, several orgs, long failure lists).

The render, content and size tests import `CASES` and the walkers from this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.storage.base import (
    Connection,
    ConnectionStatus,
    EntityCounts,
    RecordFailure,
    RunOutcome,
    RunRecord,
)
from bot.sync.ports import AttentionReason
from cards import (
    AlertCardData,
    Choice,
    ConnectionChoiceCardData,
    DisconnectCardData,
    HelpCardData,
    HistoryCardData,
    MessageCardData,
    MessageTone,
    ProgressCardData,
    RunResultCardData,
    SettingsCardData,
    SetupCardData,
    SetupStep,
    SolutionHelp,
    StatusCardData,
    StepState,
    WelcomeCardData,
    render_alert_card,
    render_connection_choice_card,
    render_disconnect_card,
    render_help_card,
    render_history_card,
    render_message_card,
    render_progress_card,
    render_run_result_card,
    render_settings_card,
    render_setup_card,
    render_status_card,
    render_welcome_card,
)
from cards.insight import (
    EntityPreviewData,
    PreviewCardData,
    WhyCardData,
    WhyChoice,
    render_preview_card,
    render_why_card,
)

T0 = datetime(2025, 3, 14, 9, 5, tzinfo=UTC)
EVIL = "[Pay here](https://evil.example) **urgent** <b>x</b>"

Json = dict[str, Any]


# --- the cards -------------------------------------------------------------------------------


def make_connection(**overrides: Any) -> Connection:
    values: dict[str, Any] = {
        "id": "conn-1",
        "name": "Acme Ltd",
        "teams_tenant_id": "tenant",
        "conversation_key": "msteams:conv",
        "created_by_aad_id": "user",
        "xero_tenant_id": "0f4e9a36-8f2a-4c43-9d0f-3a1c7b2e5d6f",
        "xero_org_name": "Acme Ltd (NZ)",
        "xero_timezone": "Pacific/Auckland",
        "dataverse_env_name": "Acme Sales",
        "dataverse_user_timezone": "Pacific/Auckland",
        "plan": "standard",
        "timezone": "Pacific/Auckland",
        "last_run_at": T0,
        "last_outcome": "succeeded",
        "next_run_at": T0 + timedelta(minutes=10),
        "xero_day_remaining": 4812,
    }
    values.update(overrides)
    return Connection(**values)


COUNTS = {
    "xdc_chartofaccounts": EntityCounts(created=3, updated=1, unchanged=40, deactivated=1),
    "xdc_taxtype": EntityCounts(unchanged=12, failed=2),
    "xdc_brandingtheme": EntityCounts(created=1),
}


def make_run(n: int = 0, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "id": f"run-{n}",
        "connection_id": "conn-1",
        "trigger": "schedule",
        "started_at": T0 - timedelta(minutes=10 * n),
        "finished_at": T0 - timedelta(minutes=10 * n) + timedelta(seconds=42),
        "outcome": RunOutcome.SUCCEEDED,
        "counts": COUNTS,
        "xero_day_remaining": 4700,
    }
    values.update(overrides)
    return RunRecord(**values)


def make_failures(n: int) -> list[RecordFailure]:
    return [
        RecordFailure(
            entity="xdc_taxtype", key=f"TAX{i:03}", reason=f"Dataverse refused the row: column too long {i}"
        )
        for i in range(n)
    ]


ORGS = (
    Choice(value="0f4e9a36-8f2a-4c43-9d0f-3a1c7b2e5d6f", title="Acme Ltd (NZ)"),
    Choice(value="7a1b2c3d-0000-4000-8000-000000000002", title="Acme Pty (AU)"),
    Choice(value="7a1b2c3d-0000-4000-8000-000000000003", title=EVIL),
)
ENVS = tuple(
    Choice(value=f"0000000{i}-aaaa-4bbb-8ccc-dddddddddddd", title=f"Environment {i}") for i in range(7)
)
SETUP = SetupCardData(setup_id="setup-1")
XERO_DONE = SETUP.mark(SetupStep.XERO, StepState.DONE, "Acme Ltd (NZ)")

CASES: dict[str, Callable[[], Json]] = {
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
    "status: active": lambda: render_status_card(
        StatusCardData.from_connection(make_connection(), make_run(error=""))
    ),
    "status: never ran": lambda: render_status_card(
        StatusCardData.from_connection(
            make_connection(last_run_at=None, last_outcome="", next_run_at=None, xero_day_remaining=None)
        )
    ),
    "status: paused": lambda: render_status_card(
        StatusCardData.from_connection(
            make_connection(status=ConnectionStatus.PAUSED, status_reason="year-end close")
        )
    ),
    "status: xero reconnect": lambda: render_status_card(
        StatusCardData.from_connection(
            make_connection(
                status=ConnectionStatus.NEEDS_RECONNECTION, status_reason=AttentionReason.XERO_RECONNECT
            ),
            make_run(outcome=RunOutcome.FAILED, error="Xero refused the sign-in (invalid_grant)."),
        )
    ),
    "status: dynamics reconnect": lambda: render_status_card(
        StatusCardData.from_connection(
            make_connection(
                status=ConnectionStatus.NEEDS_RECONNECTION, status_reason=AttentionReason.DYNAMICS_RECONNECT
            )
        )
    ),
    "status: evil names": lambda: render_status_card(
        StatusCardData.from_connection(
            make_connection(name=EVIL, xero_org_name=EVIL, dataverse_env_name=EVIL)
        )
    ),
    "status: disconnected": lambda: render_status_card(
        StatusCardData.from_connection(make_connection(status=ConnectionStatus.DISCONNECTED))
    ),
    "progress": lambda: render_progress_card(
        ProgressCardData.from_run(
            make_connection(),
            make_run(finished_at=None, outcome=RunOutcome.RUNNING),
            "Tax Rates: writing to Dynamics 365",
        )
    ),
    "run result: succeeded": lambda: render_run_result_card(
        RunResultCardData.from_run(make_connection(), make_run())
    ),
    "run result: partial, many failures": lambda: render_run_result_card(
        RunResultCardData.from_run(
            make_connection(), make_run(outcome=RunOutcome.PARTIAL, failures=make_failures(25))
        )
    ),
    "run result: failed": lambda: render_run_result_card(
        RunResultCardData.from_run(
            make_connection(next_run_at=None),
            make_run(
                outcome=RunOutcome.FAILED,
                counts={},
                error="Dynamics 365 answered 503 three times.",
                trigger="on_demand",
            ),
        )
    ),
    "run result: skipped": lambda: render_run_result_card(
        RunResultCardData.from_run(
            make_connection(), make_run(outcome=RunOutcome.SKIPPED, counts={}, xero_day_remaining=None)
        )
    ),
    "run result: five tables": lambda: render_run_result_card(
        RunResultCardData.from_run(
            make_connection(),
            make_run(
                counts={
                    **COUNTS,
                    "tracking_categories": EntityCounts(created=2),
                    "tracking_options": EntityCounts(created=4, updated=1),
                }
            ),
        )
    ),
    "run result: worst case": lambda: render_run_result_card(
        RunResultCardData.from_run(
            make_connection(name="N" * 100),
            make_run(
                outcome=RunOutcome.PARTIAL,
                failures=[
                    RecordFailure(entity="xdc_chartofaccounts", key="k" * 64, reason="r" * 2000)
                    for _ in range(500)
                ],
                error="e" * 5000,
                skipped=["tax_rates", "branding_themes"],
            ),
        )
    ),
    "history: none": lambda: render_history_card(HistoryCardData.from_runs(make_connection(), [])),
    "history: one": lambda: render_history_card(
        HistoryCardData.from_runs(make_connection(timezone="UTC"), [make_run()])
    ),
    "history: many": lambda: render_history_card(
        HistoryCardData.from_runs(
            make_connection(),
            [
                make_run(
                    i,
                    outcome=[RunOutcome.SUCCEEDED, RunOutcome.PARTIAL, RunOutcome.FAILED][i % 3],
                    error="boom" * (i % 3 == 2),
                )
                for i in range(40)
            ],
        )
    ),
    "disconnect": lambda: render_disconnect_card(
        DisconnectCardData(
            connection_id="conn-1",
            connection_name="Acme Ltd",
            xero_org_name="Acme Ltd (NZ)",
            dynamics_env_name="Acme Sales",
        )
    ),
    "disconnect: bare": lambda: render_disconnect_card(
        DisconnectCardData(connection_id="conn-1", connection_name=EVIL)
    ),
    "choose: two": lambda: render_connection_choice_card(
        ConnectionChoiceCardData(
            command="status", connections=(Choice(value="c1", title="Acme"), Choice(value="c2", title="Beta"))
        )
    ),
    "choose: many with error": lambda: render_connection_choice_card(
        ConnectionChoiceCardData(
            command="disconnect",
            connections=tuple(Choice(value=f"c{i}", title=f"Connection {i}") for i in range(9)),
            error="No connection here is called “Gamma”.",
        )
    ),
    "choose: one": lambda: render_connection_choice_card(
        ConnectionChoiceCardData(command="now", connections=(Choice(value="c1", title="Acme"),))
    ),
    **{
        f"alert: {reason.value}": (
            lambda reason=reason: render_alert_card(
                AlertCardData(
                    connection_id="conn-1",
                    connection_name="Acme Ltd",
                    reason=reason,
                    detail="Seen at 09:05 UTC.",
                )
            )
        )
        for reason in AttentionReason
    },
    "message: error with retry": lambda: render_message_card(
        MessageCardData(
            title="I couldn't reach Dynamics 365",
            text="It answered 503.\nTry again in a minute.",
            tone=MessageTone.ERROR,
            retry_command="status Acme",
        )
    ),
    **{
        f"message: {tone.value}": (
            lambda tone=tone: render_message_card(MessageCardData(title="Done", text=EVIL, tone=tone))
        )
        for tone in MessageTone
    },
    "preview: changes with examples": lambda: render_preview_card(
        PreviewCardData(
            connection_id="conn-1",
            connection_name=EVIL,
            read_at=T0,
            full=False,
            xero_calls=5,
            entities=(
                EntityPreviewData(
                    entity="accounts",
                    updated=14,
                    unchanged=60,
                    examples={"updated": tuple(f"2{i:02d} {EVIL}" for i in range(10))},
                ),
                EntityPreviewData(entity="tracking_options", deactivated=1, examples={"deactivated": ("North",)}),
            ),
            skipped=("tax_rates", "branding_themes"),
        )
    ),
    "preview: nothing to do": lambda: render_preview_card(
        PreviewCardData(connection_id="conn-1", connection_name="Acme", read_at=T0, entities=(
            EntityPreviewData(entity="accounts", unchanged=70),
        ))
    ),
    "why: failed record": lambda: render_why_card(
        WhyCardData(
            query=EVIL,
            connection_id="conn-1",
            connection_name=EVIL,
            entity="branding_themes",
            label=EVIL,
            facts=(("In Dynamics 365", "Not there yet"), ("Status in Xero", EVIL)),
            sentences=("The last run that tried to write it could not: see below.",),
            failure=f"Dataverse rejected the record: {EVIL}",
            advice="Fix it in Xero, then say now.",
        )
    ),
    "why: choice": lambda: render_why_card(
        WhyCardData(
            query=EVIL,
            choices=tuple(
                WhyChoice(title=f"Account {i} {EVIL}", command_text=f"why id:conn-1:accounts:acc-{i}") for i in range(6)
            ),
            more_choices=3,
        )
    ),
    "why: not found": lambda: render_why_card(WhyCardData(query=EVIL, not_found=True)),
}


def walk_card(node: Any) -> Iterator[Json]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk_card(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk_card(value)


def card_actions(card: Json) -> list[Json]:
    return [n for n in walk_card(card) if isinstance(n.get("type"), str) and n["type"].startswith("Action.")]


def card_inputs(card: Json) -> list[Json]:
    return [
        n
        for n in walk_card(card)
        if isinstance(n.get("type"), str) and n["type"].startswith("Input.") and n["type"] != "Input.Choice"
    ]


def markdown_texts(card: Json) -> list[str]:
    """Every string a client may read as markdown: TextBlock texts and fact values."""
    found: list[str] = []
    for node in walk_card(card):
        if node.get("type") == "TextBlock":
            found.append(node["text"])
        if node.get("type") == "FactSet":
            found += [fact["value"] for fact in node["facts"]]
    return found


def plain_texts(card: Json) -> str:
    return " ".join(n["text"] for n in walk_card(card) if n.get("type") == "TextRun")


def test_every_card_has_cases() -> None:
    kinds = {name.split(":")[0] for name in CASES}
    assert kinds >= {
        "welcome",
        "help",
        "setup",
        "settings",
        "status",
        "progress",
        "run result",
        "history",
        "disconnect",
        "choose",
        "alert",
        "message",
    }
