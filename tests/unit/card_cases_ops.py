"""Card cases of a running connection: status, progress, results, history, disconnect, choices, alerts,
messages, previews and why."""

from __future__ import annotations

from collections.abc import Callable

from bot.storage.base import (
    ConnectionStatus,
    EntityCounts,
    RecordFailure,
    RunOutcome,
)
from bot.sync.ports import AttentionReason
from cards import (
    AlertCardData,
    Choice,
    ConnectionChoiceCardData,
    DisconnectCardData,
    HistoryCardData,
    MessageCardData,
    MessageTone,
    ProgressCardData,
    RunResultCardData,
    StatusCardData,
    render_alert_card,
    render_connection_choice_card,
    render_disconnect_card,
    render_history_card,
    render_message_card,
    render_progress_card,
    render_run_result_card,
    render_status_card,
)
from cards.insight import (
    EntityPreviewData,
    PreviewCardData,
    WhyCardData,
    WhyChoice,
    render_preview_card,
    render_why_card,
)
from tests.unit.card_fixtures import COUNTS, EVIL, T0, Json, make_connection, make_failures, make_run

OPS_CASES: dict[str, Callable[[], Json]] = {
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
