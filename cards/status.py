"""The status card: how one connection is doing, and the buttons that act on it."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from bot.storage.base import Connection, ConnectionStatus, EntityCounts, FailureKind, RunOutcome, RunRecord
from bot.sync.plans import PLANS_BY_ID
from bot.sync.ports import AttentionReason
from cards.base import CardData, clip
from cards.elements import facts, open_url, plain, submit
from cards.failure_words import run_error_words, run_failure_words
from cards.formatting import (
    counts_in_words,
    format_both,
    format_count,
    outcome_words,
    total_counts,
    zone_label,
)
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb

XERO_DAILY_CALLS = 5000  # Xero's daily allowance per organisation and app

# Why a side needs attention, from the reason the sync core recorded.
XERO_PROBLEMS: dict[str, str] = {
    AttentionReason.XERO_RECONNECT: "Xero needs you to sign in again",
    AttentionReason.TENANT_DISCONNECTED: "the app was disconnected from this organisation in Xero",
    AttentionReason.XERO_TOKEN_EXPIRING: "the Xero sign-in expires soon unless a run succeeds",
    AttentionReason.XERO_DAILY_LIMIT: "today's Xero API calls are nearly used up",
}
DYNAMICS_PROBLEMS: dict[str, str] = {
    AttentionReason.DYNAMICS_RECONNECT: "Dynamics 365 needs you to sign in again",
    AttentionReason.DYNAMICS_SIGNIN_EXPIRING: "the Dynamics 365 sign-in expires soon",
}
# Reasons that put runs on hold: only meaningful while the connection still needs reconnecting.
RECONNECT_REASONS = frozenset(
    {AttentionReason.XERO_RECONNECT, AttentionReason.TENANT_DISCONNECTED, AttentionReason.DYNAMICS_RECONNECT}
)
STATE_WORDS: dict[ConnectionStatus, str] = {
    ConnectionStatus.ACTIVE: "Active: runs on schedule",
    ConnectionStatus.PAUSED: "Paused: no scheduled runs until you resume",
    ConnectionStatus.NEEDS_RECONNECTION: "Needs attention: runs are on hold",
    ConnectionStatus.DISCONNECTED: "Disconnected",
}


class StatusCardData(CardData):
    connection_id: str
    name: str
    xero_org_name: str = ""
    xero_problem: str = ""  # empty: ✅
    dynamics_env_name: str = ""
    dynamics_problem: str = ""
    plan: str = "trial"
    timezone: str = "UTC"
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    status_reason: str = ""
    last_run_at: datetime | None = None
    last_outcome: RunOutcome | None = None
    last_counts: dict[str, EntityCounts] = Field(default_factory=dict)
    last_error: str = ""
    next_run_at: datetime | None = None
    xero_calls_left: int | None = None
    # Our solution in the environment, when it is not the version this bot ships ("" otherwise).
    solution_words: str = ""
    solution_upgradable: bool = False
    solution_download_url: str = ""

    @classmethod
    def from_connection(cls, connection: Connection, last_run: RunRecord | None = None) -> StatusCardData:
        reason = connection.status_reason
        needs_attention = connection.status == ConnectionStatus.NEEDS_RECONNECTION
        # A run that put the connection on hold left its sentence as the reason, and with it (on the run
        # record) which sign-in to redo: the side and the button come from that, never from the words.
        key: str = reason
        ran = last_run is not None and (last_run.failure_kind or last_run.error) == reason
        if needs_attention and last_run is not None and last_run.attention and ran:
            key = last_run.attention
        stale = key in RECONNECT_REASONS and not needs_attention
        xero_problem = "" if stale else XERO_PROBLEMS.get(key, "")
        dynamics_problem = "" if stale else DYNAMICS_PROBLEMS.get(key, "")
        if needs_attention and not (xero_problem or dynamics_problem):
            # A reason we have no words for: show it rather than hide it.
            xero_problem = _reason_words(reason, last_run if ran else None) or "needs attention"
        try:
            outcome = RunOutcome(last_run.outcome if last_run else connection.last_outcome)
        except ValueError:
            outcome = None
        return cls(
            connection_id=connection.id,
            name=connection.name,
            xero_org_name=connection.xero_org_name,
            xero_problem=xero_problem,
            dynamics_env_name=connection.dataverse_env_name,
            dynamics_problem=dynamics_problem,
            plan=connection.plan,
            timezone=connection.timezone,
            status=connection.status,
            status_reason=reason,
            last_run_at=(last_run.started_at if last_run else connection.last_run_at),
            last_outcome=outcome,
            last_counts=dict(last_run.counts) if last_run else {},
            last_error=run_error_words(last_run) if last_run else "",
            next_run_at=connection.next_run_at,
            xero_calls_left=(
                last_run.xero_day_remaining
                if last_run and last_run.xero_day_remaining is not None
                else connection.xero_day_remaining
            ),
        )


_KINDS = frozenset(FailureKind)


def _reason_words(reason: str, run: RunRecord | None) -> str:
    """A status reason in words: a run's failure kind worded (with the run's data when it is that run's),
    anything else (a person's pause reason, an older run's sentence) as it is."""
    if run is not None and run.failure_kind is not None:
        return run_error_words(run)
    return run_failure_words(reason) if reason in _KINDS else reason


def _side(name: str, problem: str, missing: str) -> str:
    shown = clip(name, 100) or missing
    return f"⚠️ {shown}: {clip(problem, 200)}" if problem else f"✅ {shown}"


def _plan_words(plan_id: str) -> str:
    plan = PLANS_BY_ID.get(plan_id)
    return f"{plan.name}: {plan.schedule_in_words}" if plan else clip(plan_id, 40)


def _state_words(data: StatusCardData) -> str:
    words = STATE_WORDS[data.status]
    if data.status == ConnectionStatus.PAUSED and data.status_reason:
        words += f" ({clip(data.status_reason, 120)})"
    return words


def _outcome(data: StatusCardData) -> str:
    if data.last_outcome is None:
        return "no run yet"
    words = outcome_words(data.last_outcome)
    if data.last_counts:
        words += f": {counts_in_words(total_counts(data.last_counts))}"
    return words


def _calls_left(value: int | None) -> str:
    if value is None:
        return "not known until the next run"
    return f"{format_count(max(value, 0))} of {format_count(XERO_DAILY_CALLS)} (at the last run)"


def _next_run(data: StatusCardData) -> str:
    if data.status != ConnectionStatus.ACTIVE:
        return "none scheduled"
    return format_both(data.next_run_at, data.timezone, never="not scheduled yet")


def render_status_card(data: StatusCardData) -> Json:
    card = load_template("status")
    slot(card, "name")["inlines"] = [
        {"type": "TextRun", "text": clip(data.name, 100), "size": "Large", "weight": "Bolder"}
    ]
    slot(card, "connection")["facts"] = facts(
        [
            ("Xero organisation", _side(data.xero_org_name, data.xero_problem, "not connected")),
            ("Dynamics 365", _side(data.dynamics_env_name, data.dynamics_problem, "not connected")),
            ("State", _state_words(data)),
            ("Plan", _plan_words(data.plan)),
            ("Timezone", zone_label(data.timezone)),
            *([("Our solution", clip(data.solution_words, 200))] if data.solution_words else []),
        ]
    )["facts"]
    slot(card, "runs")["facts"] = facts(
        [
            ("Last run", format_both(data.last_run_at, data.timezone)),
            ("Outcome", _outcome(data)),
            ("Next run", _next_run(data)),
            ("Xero API calls left today", _calls_left(data.xero_calls_left)),
        ]
    )["facts"]
    if data.last_error:
        slot(card, "error")["items"] = [plain(clip(data.last_error, 500), color="Attention", size="Small")]

    cid = data.connection_id
    actions: list[Json] = []
    if data.xero_problem and data.status == ConnectionStatus.NEEDS_RECONNECTION:
        actions.append(submit("Reconnect Xero", CardVerb.RECONNECT_XERO, connection_id=cid))
    if data.dynamics_problem:
        actions.append(submit("Reconnect Dynamics 365", CardVerb.RECONNECT_DYNAMICS, connection_id=cid))
    if data.status == ConnectionStatus.PAUSED:
        actions.append(submit("Resume", CardVerb.RESUME_SYNC, connection_id=cid))
    if data.status == ConnectionStatus.ACTIVE:
        actions.append(submit("Run now", CardVerb.RUN_NOW, connection_id=cid))
    if data.status != ConnectionStatus.DISCONNECTED:
        actions.append(submit("Settings", CardVerb.OPEN_SETTINGS, connection_id=cid))
        actions.append(submit("History", CardVerb.SHOW_HISTORY, connection_id=cid))
    if data.solution_upgradable and data.status != ConnectionStatus.DISCONNECTED:
        actions.append(submit("Upgrade it for me", CardVerb.SOLUTION_UPGRADE, connection_id=cid))
        if data.solution_download_url:
            actions.append(open_url("Download the upgrade", data.solution_download_url))
    card["actions"] = actions
    return finish(card)
