"""`redis-server` restarted in the middle of a run: the worker (a real `python -m bot.worker`
process) rides it out and the work completes afterwards, with nothing lost and nothing doubled.

The worker subprocess helpers come from tests/integration/test_worker.py (which proves SIGKILL mid-run);
the server is the suite's own (tests/conftest.py), restarted on the same port with its append-only file.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.errors import StoreError
from bot.storage.base import RunOutcome
from bot.sync.tables import CHART_OF_ACCOUNTS
from sandbox.xero.seed import NZ_TENANT_ID
from tests.conftest import RedisServer, _start_redis
from tests.integration.harness import open_harness
from tests.integration.test_worker import logs, overlapping, workers

pytestmark = [pytest.mark.redis, pytest.mark.timeout(90)]


LEASE_SECONDS = 2.0


def stop_for(server: RedisServer, seconds: float) -> None:
    """Stop redis-server, wait, start it again on the same port and directory (its AOF is kept)."""
    assert server.proc is not None
    assert server.port is not None
    server.proc.terminate()
    server.proc.wait(10)
    time.sleep(seconds)
    server.proc = _start_redis(server.port, server._dir)


async def _eventually(check: object, timeout: float, what: str, log_dir: Path) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            if await check():  # type: ignore[operator]
                return
        except StoreError:
            pass  # our own store handle while Redis is down
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n--- worker log ---\n{logs(log_dir)[-4000:]}")
        await asyncio.sleep(0.1)


async def outage_mid_run(
    tmp_path: Path, redis_url: str, redis_server: RedisServer, *, down: float, latency: float
) -> None:
    """A worker starts a run; Redis goes away for `down` seconds in the middle of it and comes back with
    its data. Then: the work completes, nothing is lost or doubled, no two runs of it overlapped."""
    if redis_server.proc is None:
        pytest.skip("REDIS_URL points at a server these tests did not start")
    async with open_harness(
        tmp_path, redis_url=redis_url, run_lease_seconds=LEASE_SECONDS, scheduler_poll_seconds=0.1
    ) as h:
        connection = await h.connect()
        tokens_before = sorted((c, k) for c, k, _ in await h.store.all_token_blobs())
        h.xero.set_latency(latency)  # each Xero call takes this long: the run is still going after the outage
        log_dir = tmp_path / "worker"
        log_dir.mkdir()
        with workers(h, 1, log_dir):
            await h.store.schedule(connection.id, datetime.now(UTC), on_demand=True)

            async def running() -> bool:
                runs = await h.store.list_runs(connection.id, limit=1)
                return bool(runs) and runs[0].outcome == RunOutcome.RUNNING

            await _eventually(running, 20, "the worker to start the run", log_dir)
            await asyncio.to_thread(stop_for, redis_server, down)
            h.xero.set_latency(0)

            async def succeeded() -> bool:
                runs = await h.store.list_runs(connection.id, limit=10)
                return any(r.outcome == RunOutcome.SUCCEEDED for r in runs) and all(
                    r.outcome != RunOutcome.RUNNING for r in runs
                )

            await _eventually(succeeded, 45, "a run to succeed after the restart", log_dir)

        runs = await h.store.list_runs(connection.id, limit=10)
        done = next(r for r in runs if r.outcome == RunOutcome.SUCCEEDED)
        assert done.counts["accounts"].failed == 0
        # Nothing lost: the connection, its tokens (still readable), its schedule.
        after = await h.connection(connection.id)
        assert after.status == connection.status
        assert sorted((c, k) for c, k, _ in await h.store.all_token_blobs()) == tokens_before
        assert await h.runtime.xero_tokens.load(connection.id) is not None
        assert after.next_run_at is not None
        # Nothing doubled: every account exactly once in Dynamics.
        rows = await h.rows(CHART_OF_ACCOUNTS, connection, ["xdc_xeroaccountid"])
        keys = [r["xdc_xeroaccountid"] for r in rows]
        assert len(keys) == len(set(keys)) == len(h.xero.accounts(NZ_TENANT_ID))
        assert overlapping(runs) == [], f"two runs of one connection at once\n{logs(log_dir)[-3000:]}"


async def test_redis_restarted_mid_run_the_work_completes_and_nothing_is_lost(
    tmp_path: Path, redis_url: str, redis_server: RedisServer
) -> None:
    """Down for half the run lease: lease renewals fail meanwhile, the lease itself survives. (Down for
    longer than the lease, the run stops when its lease ends: tests/security/test_lease_fencing.py.)"""
    await outage_mid_run(tmp_path, redis_url, redis_server, down=LEASE_SECONDS / 2, latency=0.4)
