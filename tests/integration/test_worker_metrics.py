"""`python -m bot.worker` with WORKER_METRICS_PORT: /metrics in Prometheus text format counts the
runs it made, /readyz reports its schedule lag; off by default. Also the listener itself, in process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot import metrics
from bot.storage.base import RunOutcome
from bot.sync.worker import DEFAULT_CONCURRENCY
from bot.sync.worker_http import serve
from tests.integration.harness import Harness, open_harness

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def h(tmp_path: Path, redis_url: str) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path, redis_url=redis_url, scheduler_poll_seconds=0.1) as harness:
        yield harness


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # The client library's own parser: anything that is not the text format fails here.
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def poll(url: str, client: httpx.AsyncClient, seconds: float) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await client.get(url)
        except httpx.TransportError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_a_worker_serves_its_run_counters_and_its_lag(h: Harness, tmp_path: Path) -> None:
    connection = await h.connect()
    # Due 3 s ago: the worker claims it at once, 3 s late.
    await h.store.schedule(connection.id, datetime.now(UTC) - timedelta(seconds=3))
    port = free_port()
    env = {**os.environ, **h.settings_env(), "WORKER_METRICS_PORT": str(port), "LOG_LEVEL": "INFO"}
    log = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            first = await poll(f"{base}/metrics", client, 30)
            assert first.status_code == 200
            assert first.headers["content-type"] == metrics.CONTENT_TYPE

            async def ran() -> bool:
                runs = await h.store.list_runs(connection.id, limit=5)
                return any(r.outcome == RunOutcome.SUCCEEDED for r in runs)

            deadline = asyncio.get_running_loop().time() + 30
            while not await ran():
                assert asyncio.get_running_loop().time() < deadline, (tmp_path / "worker.log").read_text()
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.3)  # the counter is incremented right after the run's report is saved
            scraped = samples((await client.get(f"{base}/metrics")).text)
            ready = await client.get(f"{base}/readyz")
            missing = await client.get(f"{base}/nothing")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0
    runs = {
        (dict(labels)["outcome"], dict(labels)["trigger"]): v
        for (name, labels), v in scraped.items()
        if name == "xdc_sync_runs_total"
    }
    # Its first run ("setup": the connection never ran), and nothing else.
    assert runs == {("succeeded", "setup"): 1.0}, runs
    assert (
        scraped[("xdc_provider_calls_total", frozenset({("provider", "xero"), ("status_class", "2xx")}))] >= 4
    )
    assert scraped[("xdc_schedule_lag_seconds_count", frozenset())] == 1
    assert scraped[("xdc_schedule_lag_seconds_sum", frozenset())] >= 2.5
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True
    assert body["scheduler"] == "running"
    assert body["schedule_lag_seconds"] >= 2.5
    assert body["concurrency"] == DEFAULT_CONCURRENCY  # WORKER_CONCURRENCY unset
    assert missing.status_code == 404


def test_the_listener_is_off_by_default(h: Harness) -> None:
    assert h.settings.worker_metrics_port == 0


async def test_readyz_is_503_when_the_scheduler_is_not_running() -> None:
    listener = await serve("127.0.0.1", 0, lambda: False, poll_seconds=1.0)
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            ready = await client.get(f"http://127.0.0.1:{listener.port}/readyz")
            post = await client.post(f"http://127.0.0.1:{listener.port}/metrics")
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        raw = await reader.read()
        writer.close()
    finally:
        await listener.close()
    assert ready.status_code == 503
    assert ready.json()["scheduler"] == "stopped"
    assert post.status_code == 405
    assert raw.startswith(b"HTTP/1.1 400 ")
