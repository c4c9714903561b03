"""`python -m bot.worker` processes on one Redis: never two runs of one connection at once, and a
worker killed mid-run leaves the connection to another worker, which completes it correctly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.storage.base import FailureKind, RunOutcome, RunRecord
from bot.sync.tables import CHART_OF_ACCOUNTS
from sandbox.xero.seed import AU_TENANT_ID, NZ_TENANT_ID, UK_TENANT_ID
from tests.integration.harness import Harness, open_harness

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def h(tmp_path: Path, redis_url: str) -> AsyncIterator[Harness]:
    async with open_harness(
        tmp_path, redis_url=redis_url, run_lease_seconds=2.0, scheduler_poll_seconds=0.1
    ) as harness:
        yield harness


@contextmanager
def workers(
    h: Harness, count: int, log_dir: Path, concurrency: int = 8
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        **h.settings_env(),
        "LOG_LEVEL": "INFO",
        "WORKER_GRACE_SECONDS": "5",
        "WORKER_CONCURRENCY": str(concurrency),
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in range(count):
            out = (log_dir / f"worker{n}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bot.worker"],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


async def started(log_dir: Path, count: int) -> None:
    """Wait until `count` workers say they are running (a loaded machine can take seconds to start Python)."""

    async def ready() -> bool:
        return logs(log_dir).count(" running (concurrency ") >= count

    await wait_for(ready, 30, f"{count} worker(s) to start", log_dir)


def logs(log_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("worker*.log")))


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str, log_dir: Path) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}\n--- worker logs ---\n{logs(log_dir)[-4000:]}"
            )
        await asyncio.sleep(0.1)


def overlapping(runs: list[RunRecord]) -> list[tuple[str, str]]:
    """Pairs of runs whose [start, finish] intervals intersect."""
    spans = sorted((r.started_at, r.finished_at or datetime.now(UTC), r.id) for r in runs)
    clashes: list[tuple[str, str]] = []
    latest_end, latest_id = None, ""
    for start, end, run_id in spans:
        if latest_end is not None and start < latest_end:
            clashes.append((latest_id, run_id))
        if latest_end is None or end > latest_end:
            latest_end, latest_id = end, run_id
    return clashes


async def test_two_workers_never_run_one_connection_at_once(h: Harness, tmp_path: Path) -> None:
    connections = [await h.connect(tenant_id=t) for t in (NZ_TENANT_ID, AU_TENANT_ID, UK_TENANT_ID)]
    h.xero.set_latency(0.2)  # a run takes about a second
    with workers(h, 2, tmp_path, concurrency=1):
        await started(tmp_path, 2)
        # Ask for every connection again every half second ("sync now", runs under way included)
        # while two workers compete for them. An on-demand entry keeps its earliest time, so waiting
        # connections keep their place. (Paced under Xero's 60 calls a minute per organisation.)
        loop = asyncio.get_running_loop()
        end = loop.time() + 5
        while loop.time() < end:
            for connection in connections:
                await h.store.schedule(connection.id, datetime.now(UTC), on_demand=True)
            await asyncio.sleep(0.5)

        async def settled() -> bool:
            for c in connections:
                if await h.store.lease_holder(c.id) is not None:
                    return False
            return True

        for connection in connections:
            await h.store.unschedule(connection.id)
        await wait_for(settled, 20, "the last runs to finish", tmp_path)
    total = 0
    for connection in connections:
        runs = await h.store.list_runs(connection.id, limit=200)
        total += len(runs)
        assert runs, f"no run of {connection.id}\n{logs(tmp_path)[-3000:]}"
        assert overlapping(runs) == []
        assert all(r.outcome == RunOutcome.SUCCEEDED for r in runs), [r.error for r in runs]
        rows = await h.rows(CHART_OF_ACCOUNTS, connection, ["xdc_xeroaccountid"])
        keys = [r["xdc_xeroaccountid"] for r in rows]
        assert len(keys) == len(set(keys)) == len(h.xero.accounts(connection.xero_tenant_id))
    assert total >= 6
    for n in range(2):
        assert "started (" in (tmp_path / f"worker{n}.log").read_text(), f"worker {n} ran nothing"


async def test_a_worker_killed_mid_run_leaves_the_run_to_another(h: Harness, tmp_path: Path) -> None:
    connection = await h.connect()
    h.xero.set_latency(1.0)  # each Xero call takes a second: the run is long enough to be killed in
    (tmp_path / "a").mkdir()
    with workers(h, 1, tmp_path / "a") as first:
        await started(tmp_path / "a", 1)
        await h.store.schedule(connection.id, datetime.now(UTC), on_demand=True)

        async def running() -> bool:
            runs = await h.store.list_runs(connection.id, limit=1)
            return bool(runs) and runs[0].outcome == RunOutcome.RUNNING

        await wait_for(running, 20, "the first worker to start the run", tmp_path / "a")
        first[0].send_signal(signal.SIGKILL)
        first[0].wait(5)
    killed = (await h.store.list_runs(connection.id, limit=1))[0]
    assert killed.outcome == RunOutcome.RUNNING  # nobody could write its end
    h.xero.set_latency(0.0)
    (tmp_path / "b").mkdir()
    with workers(h, 1, tmp_path / "b"):

        async def completed() -> bool:
            runs = await h.store.list_runs(connection.id, limit=5)
            return any(r.outcome == RunOutcome.SUCCEEDED for r in runs)

        await wait_for(completed, 30, "the second worker to complete the run", tmp_path / "b")
    runs = await h.store.list_runs(connection.id, limit=5)
    assert [r.outcome for r in runs] == [RunOutcome.SUCCEEDED, RunOutcome.FAILED]
    assert runs[1].id == killed.id
    assert runs[1].failure_kind is FailureKind.INTERRUPTED
    assert runs[0].counts["accounts"].created == len(h.xero.accounts(NZ_TENANT_ID))
    rows = await h.rows(CHART_OF_ACCOUNTS, connection, ["xdc_xeroaccountid"])
    keys = [r["xdc_xeroaccountid"] for r in rows]
    assert len(keys) == len(set(keys)) == len(h.xero.accounts(NZ_TENANT_ID))


async def test_a_worker_stops_cleanly_on_sigterm(h: Harness, tmp_path: Path) -> None:
    connection = await h.connect()
    with workers(h, 1, tmp_path) as procs:
        await started(tmp_path, 1)
        await h.store.schedule(connection.id, datetime.now(UTC), on_demand=True)

        async def done() -> bool:
            runs = await h.store.list_runs(connection.id, limit=1)
            return bool(runs) and runs[0].outcome == RunOutcome.SUCCEEDED

        await wait_for(done, 20, "a run", tmp_path)
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(15) == 0
    assert "worker stopped" in logs(tmp_path)
    assert await h.store.lease_holder(connection.id) is None


def test_a_bad_setting_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "REDIS_URL": "http://nope", "DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "bot.worker"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert "REDIS_URL" in lines[0]
