"""Service protection limits and the fault switches (fail, drop, latency), by method and over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.sync.tables import CONNECTOR
from sandbox.entra import ALICE, CAROL
from tests.sandbox.conftest_ms import MsSandboxes, running_ms_sandboxes

PROD = "contosoprod"


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def test_too_many_requests_get_429_with_retry_after_until_the_window_moves(ms: MsSandboxes) -> None:
    ms.dataverse.set_limits(max_requests=3, window_seconds=60)

    statuses = [(await ms.dv("GET", PROD, "WhoAmI")).status_code for _ in range(3)]
    throttled = await ms.dv("GET", PROD, "WhoAmI")

    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert throttled.json()["error"] == {
        "code": "0x80072322",
        "message": "Number of requests exceeded the limit of 3 over time window of 60 seconds.",
    }
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert (await ms.dv("GET", PROD, "WhoAmI", upn=CAROL.upn)).status_code == 200  # limits are per user
    ms.clock.advance(61)
    allowed = await ms.dv("GET", PROD, "WhoAmI")
    assert allowed.status_code == 200
    assert int(allowed.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) == 2


async def test_concurrent_requests_over_the_limit_get_429(ms: MsSandboxes) -> None:
    ms.dataverse.set_limits(max_concurrent=2)
    ms.dataverse.set_latency(0.3)
    await ms.token(ALICE.upn, ms.env_url(PROD))

    responses = await asyncio.gather(*(ms.dv("GET", PROD, "WhoAmI") for _ in range(4)))

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 429, 429]
    throttled = next(r for r in responses if r.status_code == 429)
    assert throttled.json()["error"]["code"] == "0x80072326"
    assert "Retry-After" in throttled.headers


async def test_execution_time_over_the_limit_gets_429(ms: MsSandboxes) -> None:
    ms.dataverse.set_limits(max_execution_ms=100)
    ms.dataverse.set_latency(0.15)

    assert (await ms.dv("GET", PROD, "WhoAmI")).status_code == 200
    throttled = await ms.dv("GET", PROD, "WhoAmI")

    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "0x80072321"


async def test_fail_next_and_drop_next(ms: MsSandboxes) -> None:
    await ms.token(ALICE.upn, ms.env_url(PROD))
    ms.dataverse.fail_next(2, 503, retry_after=2)

    first = await ms.dv("GET", PROD, "WhoAmI")
    second = await ms.dv("GET", PROD, "WhoAmI")
    third = await ms.dv("GET", PROD, "WhoAmI")

    assert [first.status_code, second.status_code, third.status_code] == [503, 503, 200]
    assert first.headers["Retry-After"] == "2"
    ms.dataverse.fail_next(1, 500, path_prefix="$batch")
    assert (await ms.dv("GET", PROD, "WhoAmI")).status_code == 200  # the fault waits for a $batch
    ms.dataverse.fail_next(1, 429)
    throttled = await ms.dv("GET", PROD, "WhoAmI")
    assert throttled.status_code == 429
    assert throttled.json()["error"]["code"] == "0x80072322"
    assert "Retry-After" not in throttled.headers  # none asked for: the client must fall back to backoff

    ms.dataverse.drop_next(1)
    with pytest.raises(httpx.TransportError):
        await ms.dv("POST", PROD, CONNECTOR.entity_set, json={"xdc_name": "x"})
    assert ms.dataverse.rows(PROD, CONNECTOR.entity_set) == []
    assert (await ms.dv("GET", PROD, "WhoAmI")).status_code == 200

    ms.dataverse.drop_next(1, after_processing=True)
    with pytest.raises(httpx.TransportError):
        await ms.dv("POST", PROD, CONNECTOR.entity_set, json={"xdc_name": "lost reply"})
    assert [row["xdc_name"] for row in ms.dataverse.rows(PROD, CONNECTOR.entity_set)] == ["lost reply"]


async def test_the_request_log_counts_writes(ms: MsSandboxes) -> None:
    await ms.dv("POST", PROD, CONNECTOR.entity_set, json={"xdc_name": "a", "xdc_connectionid": "1", "xdc_xerotenantid": "t"})
    await ms.dv("GET", PROD, CONNECTOR.entity_set)

    log = ms.dataverse.requests
    assert [(r.method, r.status, r.env, r.upn) for r in log] == [
        ("POST", 204, PROD, ALICE.upn),
        ("GET", 200, PROD, ALICE.upn),
    ]
    assert log[0].path == f"/api-env/{PROD}/api/data/v9.2/{CONNECTOR.entity_set}"
    assert ms.dataverse.write_count == 1


async def test_control_over_http(ms: MsSandboxes) -> None:
    control = f"{ms.dataverse_url}/_sandbox/dataverse"
    await ms.dv("POST", PROD, CONNECTOR.entity_set, json={"xdc_name": "a", "xdc_connectionid": "1", "xdc_xerotenantid": "t"})

    rows = (await ms.http.get(f"{control}/rows/{PROD}/{CONNECTOR.entity_set}")).json()["value"]
    assert [row["xdc_name"] for row in rows] == ["a"]
    assert (await ms.http.get(f"{control}/requests")).json()["write_count"] == 1
    assert (await ms.http.post(f"{control}/fail-next", json={"n": 1, "status": 500})).status_code == 200
    assert (await ms.dv("GET", PROD, "WhoAmI")).json()["error"]["code"] == "0x80040216"
    assert (await ms.http.post(f"{control}/uninstall-solution", json={"env": PROD})).status_code == 200
    assert (await ms.dv("GET", PROD, CONNECTOR.entity_set)).status_code == 404
    assert (await ms.http.post(f"{control}/state", json={"env": PROD, "state": 1})).status_code == 200
    assert (await ms.dv("GET", PROD, "WhoAmI")).status_code == 503
    assert (await ms.http.post(f"{control}/grant-role", json={"env": "nowhere", "upn": ALICE.upn})).status_code == 400

    assert (await ms.http.post(f"{control}/reset")).status_code == 200
    assert ms.dataverse.rows(PROD, CONNECTOR.entity_set) == []
    assert (await ms.dv("GET", PROD, CONNECTOR.entity_set)).status_code == 200
