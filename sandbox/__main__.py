"""`python -m sandbox`: start the Xero, Entra ID and Dataverse sandboxes and print the bot's settings.

The NAME=value lines on stdout can be pasted into `.env` (or `eval`ed). Ports: SANDBOX_XERO_PORT,
SANDBOX_ENTRA_PORT, SANDBOX_DATAVERSE_PORT, SANDBOX_ENTRA_PAGES_PORT (default 3979-3982; the last is
Entra's sign-in pages over plain http, for browsers), PUBLIC_BASE_URL for the redirect URIs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from sandbox.runner import Sandboxes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description=(
            "Start the Xero, Entra ID and Dataverse sandboxes and print the bot's settings for them "
            "(NAME=value lines for .env). Ctrl-C stops them."
        ),
        epilog=(
            "Environment: SANDBOX_XERO_PORT (3979), SANDBOX_ENTRA_PORT (3980, https), SANDBOX_DATAVERSE_PORT "
            "(3981), SANDBOX_ENTRA_PAGES_PORT (3982, Entra's sign-in pages over http), PUBLIC_BASE_URL "
            "(http://localhost:3978, the bot's redirect URIs), DATA_DIR (.data, the local CA)."
        ),
    )
    parser.add_argument(
        "--solution", type=Path, default=None, metavar="PATH",
        help=(
            "the solution zip the seeded 'installed' Dataverse environments import at start (default: the "
            "newest build/solution/*_managed.zip, if any)"
        ),
    )
    return parser.parse_args(argv)


def solution_zip(path: Path | None) -> bytes | None:
    """The zip to import: the one asked for, else the newest managed build; None (said on stderr) if none."""
    if path is None:
        built = sorted(Path("build/solution").glob("*_managed.zip"), key=lambda p: p.stat().st_mtime)
        path = built[-1] if built else None
    if path is None:
        sys.stderr.write(
            "no solution zip (build/solution/*_managed.zip or --solution PATH): Dataverse environments start "
            "without the connector's tables\n"
        )
        return None
    sys.stderr.write(f"Dataverse environments seeded as installed import {path}\n")
    return path.read_bytes()


async def main(solution: Path | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sandboxes = Sandboxes(
        Path(os.environ.get("DATA_DIR", ".data")),
        xero_port=int(os.environ.get("SANDBOX_XERO_PORT", "3979")),
        entra_port=int(os.environ.get("SANDBOX_ENTRA_PORT", "3980")),
        dataverse_port=int(os.environ.get("SANDBOX_DATAVERSE_PORT", "3981")),
        entra_pages_port=int(os.environ.get("SANDBOX_ENTRA_PAGES_PORT", "3982")),
        solution_zip=solution_zip(solution),
    )
    await sandboxes.start()
    sandboxes.register_bot(os.environ.get("PUBLIC_BASE_URL", "http://localhost:3978"))
    for name, value in sandboxes.settings_env().items():
        sys.stdout.write(f"{name}={value}\n")
    sys.stdout.flush()
    # Not a setting of the bot (MSAL finds it in the discovery document), but where browsers sign in.
    logging.getLogger("sandbox").info("Entra's sign-in pages for browsers: %s", sandboxes.entra_pages_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sandboxes.stop()


if __name__ == "__main__":
    asyncio.run(main(parse_args().solution))
