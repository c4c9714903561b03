"""Faults the provider tests leave open: requests that time out (and may still have been applied on the
other side), and a change made in Xero while a run is under way. Runs end correct: every Xero record
exactly once in Dynamics, with Xero's current values, and no change lost.

429 bursts with Retry-After, 5xx, dropped connections and a record Dataverse rejects (the $batch
fallback) are proven in tests/integration/test_engine_faults.py; not repeated here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.storage.base import RunOutcome
from bot.sync import runtime as runtime_module
from sandbox.xero.seed import NZ_TENANT_ID
from tests.integration.harness import Harness, open_harness
from tests.integration.test_engine_faults import assert_dynamics_matches_xero

pytestmark = pytest.mark.timeout(90)
TIMEOUT = 0.4
API = "/api.xro/2.0"


@pytest.fixture
async def h(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    # The product's 30 s HTTP timeout, shortened so a test can outlast it in well under a second.
    monkeypatch.setattr(runtime_module, "HTTP_TIMEOUT", httpx.Timeout(TIMEOUT, connect=TIMEOUT))
    async with open_harness(tmp_path) as harness:
        yield harness


async def later(seconds: float, action: object) -> None:
    await asyncio.sleep(seconds)
    action()  # type: ignore[operator]


async def test_timeouts_on_both_sides_end_with_the_right_data_and_no_duplicates(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    connection = await h.connect()
    caplog.set_level(logging.WARNING, logger="bot.sync.http")
    accounts = h.xero.accounts(NZ_TENANT_ID)

    # Xero answers too slowly for a while: reads time out and are tried again.
    h.xero.set_latency(TIMEOUT * 2)
    recover = asyncio.create_task(later(TIMEOUT * 3, lambda: h.xero.set_latency(0)))
    first = await h.run(connection.id)
    await recover
    assert [r for r in h.xero.requests if r.path.startswith(API)], "Xero was asked"

    # Dataverse answers too slowly: a write times out on our side but lands on the other.
    for account in accounts[:4]:
        h.xero.rename_account(NZ_TENANT_ID, account["AccountID"], f"{account['Name']} (timed out)")
    h.clock.advance(2)
    h.dataverse.set_latency(TIMEOUT * 2)
    recover = asyncio.create_task(later(TIMEOUT * 3, lambda: h.dataverse.set_latency(0)))
    second = await h.run(connection.id)
    await recover

    retried = [r.getMessage() for r in caplog.records if r.name == "bot.sync.http"]
    assert any(m.startswith("xero call failed") for m in retried), "a Xero call timed out and was retried"
    assert any(m.startswith("dynamics call failed") for m in retried), "a Dataverse call timed out"

    # Whatever those two runs made of it, the next one leaves Dynamics exactly like Xero.
    h.clock.advance(2)
    third = await h.run(connection.id)
    assert third.outcome == RunOutcome.SUCCEEDED, (first.outcome, second.outcome, third.error)
    await assert_dynamics_matches_xero(h, connection)
    quiet = await h.run(connection.id)
    assert quiet.outcome == RunOutcome.SUCCEEDED
    assert sum(c.changed for c in quiet.counts.values()) == 0


async def test_a_change_made_in_xero_during_a_run_is_not_lost(h: Harness) -> None:
    connection = await h.connect()
    first = await h.run(connection.id)
    assert first.outcome == RunOutcome.SUCCEEDED, first.error
    target = h.xero.accounts(NZ_TENANT_ID)[2]

    h.clock.advance(5)
    h.xero.rename_account(
        NZ_TENANT_ID, h.xero.accounts(NZ_TENANT_ID)[5]["AccountID"], "Changed before the run"
    )
    mark = len(h.xero.requests)
    h.dataverse.set_latency(0.3)  # the run is writing to Dynamics for a while after reading Xero
    run = asyncio.create_task(h.run(connection.id))
    for _ in range(500):
        if any(r.path.startswith(f"{API}/Accounts") and r.status == 200 for r in h.xero.requests[mark:]):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the run never read the accounts")
    h.clock.advance(1)
    h.xero.rename_account(NZ_TENANT_ID, target["AccountID"], "Changed while the run was writing")
    during = await run
    h.dataverse.set_latency(0)
    assert during.outcome == RunOutcome.SUCCEEDED, during.error
    assert during.counts["accounts"].updated == 1  # only what it read

    h.clock.advance(5)
    after = await h.run(connection.id)
    assert after.outcome == RunOutcome.SUCCEEDED, after.error
    assert after.counts["accounts"].updated == 1, "the change made during the previous run"
    await assert_dynamics_matches_xero(h, connection)
