"""The local CA behind the Entra sandbox's HTTPS: trusted for 127.0.0.1 and localhost, reused while valid."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from sandbox.tls import LocalCA


async def test_the_server_certificate_is_trusted_for_both_names(tmp_path: Path) -> None:
    ca = LocalCA.create(tmp_path)
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_ssl_context())
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient(verify=ca.client_ssl_context(), trust_env=False) as client:
            for host in ("127.0.0.1", "localhost"):
                assert (await client.get(f"https://{host}:{port}/")).text == "ok"
        async with httpx.AsyncClient(verify=ssl.create_default_context(), trust_env=False) as untrusting:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.get(f"https://127.0.0.1:{port}/")
    finally:
        await runner.cleanup()


def test_an_existing_valid_ca_is_reused(tmp_path: Path) -> None:
    first = LocalCA.create(tmp_path)
    bundle = first.ca_bundle_path.read_bytes()

    second = LocalCA.create(tmp_path)

    assert second.ca_bundle_path.read_bytes() == bundle


def test_a_damaged_ca_is_replaced(tmp_path: Path) -> None:
    first = LocalCA.create(tmp_path)
    bundle = first.ca_bundle_path.read_bytes()
    first.server_cert_path.write_text("not a certificate")

    second = LocalCA.create(tmp_path)

    assert second.ca_bundle_path.read_bytes() != bundle
    second.server_ssl_context()
