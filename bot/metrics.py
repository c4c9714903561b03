"""Prometheus metrics of the bot and the workers: one definition each, recorded with one-line calls.

Served in the Prometheus text format (`render()`): by the bot at GET /metrics (bot/web/metrics.py) and
by a worker on its own small listener (bot/sync/worker_http.py). The process-wide default registry is
used, so the client library's process and Python collectors (CPU, memory, GC) come along.

Names follow Prometheus' conventions (https://prometheus.io/docs/practices/naming/): a unit suffix in
base units (`_seconds`), `_total` on counters (added by the client library), labels of small, bounded
value sets only: provider, status class, outcome, activity kind. No connection or tenant ids as labels:
at 10,000 connections they would make 10,000 series per metric.

This module imports no web framework, so the sync core may use it (see the import-linter contracts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder

# What a scraper that asks for no other format gets: the text format 0.0.4, which every Prometheus reads
# (https://prometheus.io/docs/instrumenting/exposition_formats/).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Runs are seconds long (1 s with latency at 100 accounts, 2.5 s at 5,000); some wait on a Retry-After.
_RUN_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
# The product's promise is a start within 30 s of the due time; most start within a second.
_LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
# A turn's target is p99 < 50 ms.
_TURN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

RUNS = Counter("xdc_sync_runs", "Sync runs finished, by outcome", ["outcome", "trigger"])
RUN_DURATION = Histogram(
    "xdc_sync_run_duration_seconds", "Wall time of a sync run, start to report", buckets=_RUN_BUCKETS
)
SCHEDULE_LAG = Histogram(
    "xdc_schedule_lag_seconds",
    "How late a scheduled run was claimed, after its due time",
    buckets=_LAG_BUCKETS,
)
SCHEDULE_LAG_LAST = Gauge("xdc_schedule_lag_last_seconds", "The schedule lag of the latest claimed run")
SCHEDULE_POLL = Gauge(
    "xdc_schedule_last_poll_timestamp_seconds", "When this process last asked the store for due runs"
)
RUNS_IN_FLIGHT = Gauge("xdc_sync_runs_in_flight", "Runs this process's scheduler has under way")
CLAIMS = Counter("xdc_schedule_claims", "Due runs claimed by this process", ["trigger"])
PROVIDER_CALLS = Counter(
    "xdc_provider_calls", "HTTP calls to Xero and Dataverse, by answer", ["provider", "status_class"]
)
PROVIDER_THROTTLED = Counter(
    "xdc_provider_throttled", "Calls answered 429 (rate limited), by provider", ["provider"]
)
PROACTIVE_QUEUE = Gauge(
    "xdc_proactive_queue_depth", "Notifications queued for Teams and not yet started (all conversations)"
)
TURNS = Histogram(
    "xdc_bot_turn_seconds",
    "POST /api/messages: from the request to the answer, by activity kind and status class",
    ["kind", "status_class"],
    buckets=_TURN_BUCKETS,
)


def render(accept: str = "") -> tuple[bytes, str]:
    """Every metric of this process, and its content type: the format is chosen from the scraper's
    Accept header as the client library's own HTTP server does (text 0.0.4 by default; text 1.0.0 or
    OpenMetrics when asked for)."""
    encoder, content_type = choose_encoder(accept)
    return encoder(REGISTRY), content_type


def status_class(status: int | None) -> str:
    """'2xx' .. '5xx' for an HTTP status; 'error' when no answer came (dropped connection, timeout)."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx"


def provider_call(provider: str, status: int | None) -> None:
    """One HTTP attempt to a provider (each retry counts), with its status or None for no answer."""
    name = _provider(provider)
    PROVIDER_CALLS.labels(name, status_class(status)).inc()
    if status == 429:
        PROVIDER_THROTTLED.labels(name).inc()


def run_finished(outcome: str, trigger: str, started_at: datetime, finished_at: datetime | None) -> None:
    RUNS.labels(outcome, _trigger(trigger)).inc()
    if finished_at is not None:
        RUN_DURATION.observe(max(0.0, (finished_at - started_at).total_seconds()))


@dataclass
class ScheduleView:
    """This process's scheduler as /readyz reports it (a worker has one scheduler)."""

    last_poll_monotonic: float | None = None
    last_lag_seconds: float = 0.0
    claimed: int = 0
    in_flight: int = 0
    concurrency: int = 0


SCHEDULE = ScheduleView()


def polled(in_flight: int, concurrency: int) -> None:
    """The scheduler's loop came round (whether or not it had room to claim)."""
    SCHEDULE.last_poll_monotonic = time.monotonic()
    SCHEDULE.in_flight = in_flight
    SCHEDULE.concurrency = concurrency
    SCHEDULE_POLL.set(time.time())
    RUNS_IN_FLIGHT.set(in_flight)


def claims_made(due_times: list[tuple[datetime, bool]], now: datetime) -> None:
    """`due_times`: the (due time, on demand) of the runs one claim returned."""
    for due_at, on_demand in due_times:
        CLAIMS.labels("on_demand" if on_demand else "schedule").inc()
        SCHEDULE.claimed += 1
        if on_demand:
            continue  # "sync now" is due when asked: its wait is not the schedule's lag
        lag = max(0.0, (now - due_at).total_seconds())
        SCHEDULE_LAG.observe(lag)
        SCHEDULE_LAG_LAST.set(lag)
        SCHEDULE.last_lag_seconds = lag


def queued(change: int) -> None:
    """Notifications queued (+n) or taken off the queue (-n)."""
    PROACTIVE_QUEUE.inc(change)


def turn_answered(kind: str, status: int, seconds: float) -> None:
    TURNS.labels(_kind(kind), status_class(status)).observe(seconds)


_PROVIDERS = {"xero": "xero", "dynamics": "dataverse", "dataverse": "dataverse"}
_TRIGGERS = frozenset({"setup", "schedule", "on_demand"})  # bot.storage.base.RunTrigger
# Activity types of the Bot Framework schema (https://learn.microsoft.com/en-us/dotnet/api/microsoft.bot.schema.activitytypes);
# "none": refused before its type was read (not JSON, not an activity).
_KINDS = frozenset(
    {
        "message",
        "invoke",
        "conversationUpdate",
        "installationUpdate",
        "messageReaction",
        "messageUpdate",
        "messageDelete",
        "event",
        "typing",
        "endOfConversation",
        "none",
    }
)


def _provider(name: str) -> str:
    # Our clients name Dataverse "dynamics"; one spelling per provider, and no unbounded labels.
    return _PROVIDERS.get(name.lower(), "other")


def _trigger(name: str) -> str:
    # str(): a RunTrigger is a StrEnum; its plain value is the label.
    return str(name) if name in _TRIGGERS else "other"


def _kind(name: str) -> str:
    return name if name in _KINDS else "other"
