"""Xero sandbox fixtures only (the Entra ID and Dataverse helpers keep theirs in their own files):
a sandbox on its own clock, served on an ephemeral port, and an httpx client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web

from sandbox.clock import Clock
from sandbox.xero import XeroSandbox


@pytest.fixture
def xero_clock() -> Clock:
    return Clock()


@pytest.fixture
def xero(xero_clock: Clock) -> XeroSandbox:
    return XeroSandbox(xero_clock)


@pytest.fixture
async def xero_url(xero: XeroSandbox) -> AsyncIterator[str]:
    runner = web.AppRunner(xero.app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert server is not None
    port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def xero_http(xero_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=xero_url, timeout=10) as client:
        yield client
