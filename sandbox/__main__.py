"""`python -m sandbox`: start the Xero, Entra ID and Dataverse sandboxes and print the bot's settings.

The NAME=value lines on stdout can be pasted into `.env` (or `eval`ed). Ports: SANDBOX_XERO_PORT,
SANDBOX_ENTRA_PORT, SANDBOX_DATAVERSE_PORT (default 3979-3981), PUBLIC_BASE_URL for the redirect URIs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from sandbox.runner import Sandboxes


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sandboxes = Sandboxes(
        Path(os.environ.get("DATA_DIR", ".data")),
        xero_port=int(os.environ.get("SANDBOX_XERO_PORT", "3979")),
        entra_port=int(os.environ.get("SANDBOX_ENTRA_PORT", "3980")),
        dataverse_port=int(os.environ.get("SANDBOX_DATAVERSE_PORT", "3981")),
    )
    await sandboxes.start()
    sandboxes.register_bot(os.environ.get("PUBLIC_BASE_URL", "http://localhost:3978"))
    for name, value in sandboxes.settings_env().items():
        sys.stdout.write(f"{name}={value}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sandboxes.stop()


if __name__ == "__main__":
    asyncio.run(main())
