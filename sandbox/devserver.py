"""`make run`: the sandbox, the bot (embedded SQLite store) and, when Node.js is there, the Agents Playground.

Everything runs in this process except the Playground (a Node.js child). Ctrl-C stops all of it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
PLAYGROUND = ROOT / "tools" / "playground" / "node_modules" / ".bin" / "agentsplayground"
log = logging.getLogger("devserver")


async def _start_playground(bot_port: int) -> asyncio.subprocess.Process | None:
    # PLAYGROUND=0: whoever runs us starts (or does not want) a Playground of its own, e.g. the e2e tests.
    if os.environ.get("PLAYGROUND", "").strip().lower() in {"0", "false", "no", "off"}:
        log.info("PLAYGROUND=0: not starting the Agents Playground")
        return None
    if not PLAYGROUND.exists() or not shutil.which("node"):
        log.warning("Node.js or the Agents Playground is missing: chat with the bot from another client")
        return None
    env = dict(os.environ, TEAMSAPPTESTER_BROWSER="none")
    proc = await asyncio.create_subprocess_exec(
        str(PLAYGROUND), "start", "-e", f"http://127.0.0.1:{bot_port}/api/messages", "-c", "msteams",
        "--disable-telemetry",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    port = "56150"
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while line := (await proc.stdout.readline()).decode(errors="replace"):
                if "Listening on" in line:
                    port = line.rsplit("Listening on", 1)[1].strip().split()[0].strip(".:")
                    break
    except TimeoutError:
        log.warning("The Playground did not say which port it listens on; trying 56150")
    log.info("Chat with the bot in the Microsoft 365 Agents Playground: open http://localhost:%s/", port)

    async def drain() -> None:
        assert proc.stdout is not None
        while await proc.stdout.readline():
            pass

    asyncio.get_running_loop().create_task(drain())
    return proc


async def main() -> None:
    if str(ROOT) not in sys.path:  # app.py sits at the top of the checkout, not in a package
        sys.path.insert(0, str(ROOT))
    from app import create_app
    from bot.config import config_errors_exit, load_settings
    from bot.logs import configure_logging
    from bot.solution import build_zip
    from sandbox.runner import Sandboxes

    configure_logging(os.environ.get("LOG_LEVEL", "INFO"))
    data_dir = Path(os.environ.get("DATA_DIR", ".data"))
    public = os.environ.get("PUBLIC_BASE_URL", f"http://localhost:{os.environ.get('PORT', '3978')}")
    sandboxes = Sandboxes(
        data_dir,
        xero_port=int(os.environ.get("SANDBOX_XERO_PORT", "3979")),
        entra_port=int(os.environ.get("SANDBOX_ENTRA_PORT", "3980")),
        dataverse_port=int(os.environ.get("SANDBOX_DATAVERSE_PORT", "3981")),
        # Entra's sign-in pages over plain http too, so the browser shows no certificate warning.
        entra_pages_port=int(os.environ.get("SANDBOX_ENTRA_PAGES_PORT", "3982")),
        # The seeded "installed" environments import the solution we ship, as a customer's admin would.
        solution_zip=build_zip(managed=True),
    )
    await sandboxes.start()
    sandboxes.register_bot(public)
    for name, value in sandboxes.settings_env().items():
        os.environ.setdefault(name, value)
    with config_errors_exit():
        settings = load_settings(public_base_url=public, data_dir=data_dir)
    app = await create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10)
    await runner.setup()
    # Anonymous (no app id): loopback only, whatever HOST says.
    await web.TCPSite(runner, settings.bind_host, settings.port).start()
    log.info("Bot listening on http://localhost:%s/api/messages (sandbox: Xero %s, Entra %s with its sign-in "
             "pages on %s, Dataverse %s)", settings.port, sandboxes.xero_url, sandboxes.entra_url,
             sandboxes.entra_pages_url, sandboxes.dataverse_url)
    playground = await _start_playground(settings.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("Stopping")
    if playground is not None and playground.returncode is None:
        playground.terminate()
        await playground.wait()
    await runner.cleanup()
    await sandboxes.stop()


if __name__ == "__main__":
    asyncio.run(main())
