"""bot.metrics: what each one-line call records, and that labels stay within small fixed sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from bot import metrics
from bot.storage.base import RunTrigger


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_status_classes() -> None:
    assert [metrics.status_class(s) for s in (200, 204, 302, 404, 429, 503)] == [
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
    ]
    assert metrics.status_class(None) == "error"
    assert metrics.status_class(0) == "error"


def test_provider_calls_count_each_attempt_and_429s_apart() -> None:
    before = {
        "ok": value("xdc_provider_calls_total", provider="dataverse", status_class="2xx"),
        "limited": value("xdc_provider_calls_total", provider="dataverse", status_class="4xx"),
        "throttled": value("xdc_provider_throttled_total", provider="dataverse"),
        "dropped": value("xdc_provider_calls_total", provider="xero", status_class="error"),
    }
    metrics.provider_call("dynamics", 429)  # our clients call Dataverse "dynamics"
    metrics.provider_call("dynamics", 200)
    metrics.provider_call("xero", None)
    assert value("xdc_provider_calls_total", provider="dataverse", status_class="2xx") == before["ok"] + 1
    assert (
        value("xdc_provider_calls_total", provider="dataverse", status_class="4xx") == before["limited"] + 1
    )
    assert value("xdc_provider_throttled_total", provider="dataverse") == before["throttled"] + 1
    assert value("xdc_provider_calls_total", provider="xero", status_class="error") == before["dropped"] + 1


def test_a_run_is_counted_by_outcome_and_trigger_with_its_duration() -> None:
    started = datetime(2026, 1, 1, tzinfo=UTC)
    before = value("xdc_sync_runs_total", outcome="partial", trigger="on_demand")
    count = value("xdc_sync_run_duration_seconds_count")
    total = value("xdc_sync_run_duration_seconds_sum")
    metrics.run_finished("partial", RunTrigger.ON_DEMAND, started, started + timedelta(seconds=2.5))
    assert value("xdc_sync_runs_total", outcome="partial", trigger="on_demand") == before + 1
    assert value("xdc_sync_run_duration_seconds_count") == count + 1
    assert value("xdc_sync_run_duration_seconds_sum") == total + 2.5


def test_schedule_lag_leaves_out_sync_now_and_readyz_sees_the_latest() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    count = value("xdc_schedule_lag_seconds_count")
    metrics.polled(3, 8)
    metrics.claims_made([(now - timedelta(seconds=4), False), (now - timedelta(seconds=90), True)], now)
    assert value("xdc_schedule_lag_seconds_count") == count + 1
    assert metrics.SCHEDULE.last_lag_seconds == 4.0
    assert (metrics.SCHEDULE.in_flight, metrics.SCHEDULE.concurrency) == (3, 8)
    assert value("xdc_sync_runs_in_flight") == 3


def test_unknown_label_values_collapse_into_other() -> None:
    before = value("xdc_bot_turn_seconds_count", kind="other", status_class="2xx")
    metrics.turn_answered("a-made-up-type-" + "x" * 100, 200, 0.01)
    assert value("xdc_bot_turn_seconds_count", kind="other", status_class="2xx") == before + 1


def test_the_queue_gauge_goes_up_and_down() -> None:
    before = value("xdc_proactive_queue_depth")
    metrics.queued(3)
    metrics.queued(-2)
    assert value("xdc_proactive_queue_depth") == before + 1
    metrics.queued(-1)


def test_render_is_the_text_format_unless_openmetrics_is_asked_for() -> None:
    body, content_type = metrics.render()
    text = body.decode()
    assert "# TYPE xdc_sync_runs_total counter" in text
    assert "# TYPE xdc_bot_turn_seconds histogram" in text
    assert content_type == metrics.CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    body, content_type = metrics.render("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.decode().rstrip().endswith("# EOF")
