"""Start the three sandboxes together: Xero (http), Entra ID (https, local CA) and Dataverse (http).

Used by `python -m sandbox`, by `make run` (through bot.devserver) and by the tests, on fixed or
ephemeral ports. `settings_env()` gives every setting the bot needs to use them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import TracebackType

from aiohttp import web

from sandbox.clock import Clock
from sandbox.dataverse import DataverseSandbox
from sandbox.entra import CLIENT_ID as ENTRA_CLIENT_ID
from sandbox.entra import CLIENT_SECRET as ENTRA_CLIENT_SECRET
from sandbox.entra import EntraSandbox
from sandbox.tls import LocalCA
from sandbox.xero import CLIENT_ID as XERO_CLIENT_ID
from sandbox.xero import CLIENT_SECRET as XERO_CLIENT_SECRET
from sandbox.xero import XeroSandbox

log = logging.getLogger(__name__)


class Sandboxes:
    def __init__(
        self,
        data_dir: Path,
        *,
        host: str = "127.0.0.1",
        xero_port: int = 0,
        entra_port: int = 0,
        dataverse_port: int = 0,
        entra_pages_port: int | None = None,
        clock: Clock | None = None,
        solution_zip: bytes | None = None,
    ) -> None:
        """`solution_zip`: the solution package the seeded "installed" Dataverse environments import at
        start (the sandbox never builds it: it cannot import `bot`; the caller passes
        `bot.solution.build_zip(managed=True)`). Without it they start without our tables."""
        self.data_dir = data_dir
        self.host = host
        self.clock = clock or Clock()
        self.xero = XeroSandbox(self.clock)
        self.entra = EntraSandbox(self.clock)
        self.dataverse = DataverseSandbox(self.entra, self.clock, solution_zip=solution_zip)
        self._ports = {"xero": xero_port, "entra": entra_port, "dataverse": dataverse_port}
        self._runners: list[web.AppRunner] = []
        self.ca: LocalCA | None = None
        self.xero_url = self.entra_url = self.dataverse_url = ""
        # Entra's sign-in pages also over plain http (None: only on the TLS origin), so that a person's
        # browser opens them without a certificate warning during `make run` (sandbox/entra/README.md).
        self._entra_pages_port = entra_pages_port
        self.entra_pages_url = ""

    async def start(self) -> Sandboxes:
        self.ca = LocalCA.create(self.data_dir / "sandbox-ca")
        self.xero_url = await self._serve(self.xero.app, self._ports["xero"], tls=False)
        self.entra_url = await self._serve(self.entra.app, self._ports["entra"], tls=True)
        self.entra.set_base_url(self.entra_url)
        if self._entra_pages_port is not None:
            self.entra_pages_url = await self._serve(self.entra.pages_app, self._entra_pages_port, tls=False)
            self.entra.set_pages_url(self.entra_pages_url)
        self.dataverse_url = await self._serve(self.dataverse.app, self._ports["dataverse"], tls=False)
        self.dataverse.set_base_url(self.dataverse_url)
        return self

    async def _serve(self, app: web.Application, port: int, *, tls: bool) -> str:
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await runner.setup()
        ssl_context = self.ca.server_ssl_context() if tls and self.ca else None
        site = web.TCPSite(runner, self.host, port, ssl_context=ssl_context)
        await site.start()
        self._runners.append(runner)
        server = site._server  # the bound socket tells the real port when 0 was asked for
        assert server is not None
        assert server.sockets  # type: ignore[attr-defined]
        real_port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        scheme = "https" if tls else "http"
        return f"{scheme}://{'localhost' if tls else self.host}:{real_port}"

    def register_bot(self, public_base_url: str) -> None:
        """Register the bot's OAuth redirect URIs with both identity providers (exact match, as the real ones)."""
        base = public_base_url.rstrip("/")
        self.xero.register_redirect_uri(f"{base}/oauth/xero/callback")
        self.entra.register_redirect_uri(f"{base}/oauth/dynamics/callback")

    def settings_env(self) -> dict[str, str]:
        assert self.ca is not None
        return {
            "SANDBOX": "true",
            "XERO_CLIENT_ID": XERO_CLIENT_ID,
            "XERO_CLIENT_SECRET": XERO_CLIENT_SECRET,
            "XERO_LOGIN_URL": self.xero_url,
            "XERO_IDENTITY_URL": self.xero_url,
            "XERO_API_URL": self.xero_url,
            "DYNAMICS_CLIENT_ID": ENTRA_CLIENT_ID,
            "DYNAMICS_CLIENT_SECRET": ENTRA_CLIENT_SECRET,
            "ENTRA_AUTHORITY_HOST": self.entra_url,
            "DATAVERSE_DISCOVERY_URL": self.dataverse_url,
            "CA_BUNDLE": str(self.ca.ca_bundle_path),
        }

    async def stop(self) -> None:
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()

    async def __aenter__(self) -> Sandboxes:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
