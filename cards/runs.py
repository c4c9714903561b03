"""Cards about runs: one running (progress), one finished (result), the last few (history)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from bot.storage.base import Connection, EntityCounts, RecordFailure, RunOutcome, RunRecord
from cards.base import CardData, clip
from cards.elements import facts, plain, submit, table, text
from cards.failure_words import record_failure_words, run_error_words
from cards.formatting import (
    TRIGGER_WORDS,
    clock_name,
    clock_time,
    counts_in_words,
    entity_label,
    format_both,
    format_count,
    format_duration,
    ordered_counts,
    outcome_words,
    skipped_in_words,
    total_counts,
)
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb

MAX_FAILURES_SHOWN = 10
MAX_HISTORY_ROWS = 25

RESULT_TITLES: dict[RunOutcome, str] = {
    RunOutcome.RUNNING: "⏳ Sync running",
    RunOutcome.SUCCEEDED: "✅ Sync done",
    RunOutcome.PARTIAL: "⚠️ Sync done, some records failed",
    RunOutcome.FAILED: "❌ Sync failed",
    RunOutcome.SKIPPED: "⏭️ Sync skipped",
}


def _name_run(name: str) -> list[Json]:
    return [{"type": "TextRun", "text": clip(name, 100), "isSubtle": True}]


def _trigger(trigger: str) -> str:
    return TRIGGER_WORDS.get(trigger, clip(trigger.replace("_", " "), 40) or "scheduled")


class ProgressCardData(CardData):
    connection_name: str
    stage: str
    started_at: datetime
    timezone: str = "UTC"
    trigger: str = "schedule"

    @classmethod
    def from_run(cls, connection: Connection, run: RunRecord, stage: str) -> ProgressCardData:
        return cls(
            connection_name=connection.name,
            stage=stage,
            started_at=run.started_at,
            timezone=connection.timezone,
            trigger=run.trigger,
        )


def render_progress_card(data: ProgressCardData) -> Json:
    card = load_template("progress")
    slot(card, "name")["inlines"] = _name_run(data.connection_name)
    slot(card, "facts")["facts"] = facts(
        [
            ("Now", clip(data.stage, 200) or "starting"),
            ("Started", format_both(data.started_at, data.timezone)),
            ("Run", _trigger(data.trigger)),
        ]
    )["facts"]
    return finish(card)


class RunResultCardData(CardData):
    connection_id: str
    connection_name: str
    outcome: RunOutcome
    trigger: str = "schedule"
    started_at: datetime
    finished_at: datetime | None = None
    counts: dict[str, EntityCounts] = Field(default_factory=dict)
    failures: tuple[RecordFailure, ...] = ()
    error: str = ""
    next_run_at: datetime | None = None
    timezone: str = "UTC"
    xero_calls_left: int | None = None
    skipped: tuple[str, ...] = ()  # entities switched off for this run

    @classmethod
    def from_run(cls, connection: Connection, run: RunRecord) -> RunResultCardData:
        return cls(
            connection_id=connection.id,
            connection_name=connection.name,
            outcome=run.outcome,
            trigger=run.trigger,
            started_at=run.started_at,
            finished_at=run.finished_at,
            counts=dict(run.counts),
            failures=tuple(run.failures),
            error=run_error_words(run),
            next_run_at=connection.next_run_at,
            timezone=connection.timezone,
            xero_calls_left=run.xero_day_remaining,
            skipped=tuple(run.skipped),
        )


_COUNT_ROWS = (
    ("Created", "created"),
    ("Updated", "updated"),
    ("Unchanged", "unchanged"),
    ("Deactivated", "deactivated"),
    ("Failed", "failed"),
)


def _counts_table(counts: dict[str, EntityCounts]) -> Json:
    # One column per table and one row per kind of change: entity names wrap between words, while six
    # columns of one-word headers broke mid-word in a channel's narrow cards.
    entities = ordered_counts(counts)
    rows = [[label, *(format_count(getattr(c, field)) for _, c in entities)] for label, field in _COUNT_ROWS]
    return table(["Records", *(label for label, _ in entities)], rows, [3, *([2] * len(entities))])


def _failures(failures: tuple[RecordFailure, ...]) -> list[Json]:
    if not failures:
        return []
    items: list[Json] = [text(f"Records that failed ({format_count(len(failures))})", weight="Bolder")]
    for failure in failures[:MAX_FAILURES_SHOWN]:
        where = f"{entity_label(failure.entity)} {clip(failure.key, 60)}"
        items.append(
            {
                "type": "RichTextBlock",
                "spacing": "Small",
                "inlines": [
                    {"type": "TextRun", "text": where, "weight": "Bolder", "size": "Small"},
                    {"type": "TextRun", "text": f": {clip(record_failure_words(failure), 300)}", "size": "Small"},
                ],
            }
        )
    hidden = len(failures) - MAX_FAILURES_SHOWN
    if hidden > 0:
        items.append(text(f"…and {format_count(hidden)} more.", size="Small", isSubtle=True))
    return items


def render_run_result_card(data: RunResultCardData) -> Json:
    card = load_template("run_result")
    slot(card, "title")["text"] = RESULT_TITLES[data.outcome]
    slot(card, "name")["inlines"] = _name_run(data.connection_name)
    duration = None
    if data.finished_at is not None:
        duration = (data.finished_at - data.started_at).total_seconds()
    pairs = [
        ("Outcome", outcome_words(data.outcome)),
        ("Changes", counts_in_words(total_counts(data.counts))),
        ("Started", format_both(data.started_at, data.timezone)),
        ("Took", format_duration(duration)),
        ("Run", _trigger(data.trigger)),
        ("Next run", format_both(data.next_run_at, data.timezone, never="none scheduled")),
    ]
    if data.xero_calls_left is not None:
        pairs.append(("Xero API calls left today", format_count(max(data.xero_calls_left, 0))))
    slot(card, "facts")["facts"] = facts(pairs)["facts"]
    if data.error:
        slot(card, "error")["items"] = [plain(clip(data.error, 600), color="Attention")]
    counts: list[Json] = [_counts_table(data.counts)] if data.counts else []
    counts += [plain(line, size="Small", isSubtle=True) for line in skipped_in_words(data.skipped)]
    slot(card, "counts")["items"] = counts
    slot(card, "failures")["items"] = _failures(data.failures)
    cid = data.connection_id
    actions: list[Json] = []
    if data.outcome in (RunOutcome.FAILED, RunOutcome.PARTIAL):
        actions.append(submit("Run again", CardVerb.RUN_NOW, connection_id=cid))
    actions.append(submit("History", CardVerb.SHOW_HISTORY, connection_id=cid))
    actions.append(submit("Status", CardVerb.SHOW_STATUS, connection_id=cid))
    card["actions"] = actions
    return finish(card)


class HistoryCardData(CardData):
    connection_id: str
    connection_name: str
    timezone: str = "UTC"
    runs: tuple[RunRecord, ...] = Field(default=(), max_length=MAX_HISTORY_ROWS)  # newest first

    @classmethod
    def from_runs(cls, connection: Connection, runs: list[RunRecord]) -> HistoryCardData:
        return cls(
            connection_id=connection.id,
            connection_name=connection.name,
            timezone=connection.timezone,
            runs=tuple(runs[:MAX_HISTORY_ROWS]),
        )


def _history_row(run: RunRecord, timezone: str) -> list[str]:
    outcome = outcome_words(run.outcome)
    error = run_error_words(run)
    if error and run.outcome == RunOutcome.FAILED:
        outcome += f": {clip(error, 80)}"
    return [
        clock_time(run.started_at, timezone),
        outcome,
        counts_in_words(total_counts(run.counts)) if run.counts else "–",
        format_duration(run.duration_seconds),
    ]


def render_history_card(data: HistoryCardData) -> Json:
    card = load_template("history")
    count = len(data.runs)
    slot(card, "title")["text"] = "Recent runs" if count != 1 else "Latest run"
    slot(card, "name")["inlines"] = _name_run(data.connection_name)
    zone_name = clock_name(data.timezone)
    if data.runs:
        slot(card, "runs")["items"] = [
            table(
                [f"When ({zone_name})", "Outcome", "Changes", "Took"],
                [_history_row(run, data.timezone) for run in data.runs],
                [3, 3, 4, 2],
            )
        ]
        slot(card, "note")["text"] = (
            f"The last {count} runs, newest first." if count > 1 else "The only run so far."
        )
    else:
        slot(card, "note")["text"] = (
            "No runs yet. The first one starts when the setup is done or when you say **now**."
        )
    cid = data.connection_id
    card["actions"] = [
        submit("Run now", CardVerb.RUN_NOW, connection_id=cid),
        submit("Status", CardVerb.SHOW_STATUS, connection_id=cid),
    ]
    return finish(card)
