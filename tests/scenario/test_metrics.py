"""GET /metrics on the shipped bot: Prometheus text format, and it counts what happened (a run, turns,
Xero and Dataverse calls, the proactive queue), read back after a real setup and first run."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import CONTENT_TYPE
from tests.scenario.botharness import ALICE, BotHarness, connect_via_chat, open_bot

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(bot: BotHarness) -> Samples:
    response = await bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE
    samples: Samples = {}
    # The client library's own parser: a line it cannot read fails the test.
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


async def test_metrics_count_the_first_run_the_turns_and_the_provider_calls(tmp_path: Path) -> None:
    async with open_bot(tmp_path, use_app=True, run_scheduler=True) as bot:
        # The registry is the process's: other tests in this process counted too, so compare deltas.
        before = await scrape(bot)
        chat = bot.personal(ALICE)
        mark = bot.connector.mark()
        await connect_via_chat(chat, name="Metered", plan="trial")
        await bot.connector.wait_for_card("✅ Sync done", since=mark, timeout=30)
        after = await scrape(bot)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert grew("xdc_sync_runs_total", outcome="succeeded") == 1
    assert grew("xdc_sync_run_duration_seconds_count") == 1
    assert grew("xdc_bot_turn_seconds_count", kind="message", status_class="2xx") >= 2
    assert grew("xdc_provider_calls_total", provider="xero", status_class="2xx") >= 4
    assert grew("xdc_provider_calls_total", provider="dataverse", status_class="2xx") >= 1
    assert grew("xdc_schedule_claims_total") >= 1
    # Every queued notification was taken off the queue again.
    assert total(after, "xdc_proactive_queue_depth") == total(before, "xdc_proactive_queue_depth")


async def test_a_refused_turn_is_counted_with_its_status(tmp_path: Path) -> None:
    async with open_bot(tmp_path, use_app=True) as bot:
        before = await scrape(bot)
        response = await bot.http.post(
            f"{bot.url}/api/messages", content=b"not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        after = await scrape(bot)
    key = ("xdc_bot_turn_seconds_count", (("kind", "none"), ("status_class", "4xx")))
    assert after.get(key, 0.0) - before.get(key, 0.0) == 1


async def test_connector_clients_are_reused_across_turns_and_proactive_sends(tmp_path: Path) -> None:
    """botbuilder would build a ConnectorClient per activity; the adapter keeps one per service URL and
    audience (one for replies, one for proactive sends), over a whole setup and first run."""
    async with open_bot(tmp_path, use_app=True, run_scheduler=True) as bot:
        chat = bot.personal(ALICE)
        mark = bot.connector.mark()
        await connect_via_chat(chat, name="Reused", plan="trial")
        await bot.connector.wait_for_card("✅ Sync done", since=mark, timeout=30)
        sent = len(bot.connector.outbound[mark:])
        built = bot.adapter.bot_framework_authentication.connectors.built
    assert sent >= 8
    assert built <= 2
