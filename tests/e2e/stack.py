"""The processes an e2e test talks to: the product (`python -m sandbox.devserver`) and the Agents Playground.

Both run as child processes on free ports, with their output in log files, and are stopped by their
own process id. The devserver starts the three sandboxes and the bot in one process; it is told not to
start a Playground of its own (`PLAYGROUND=0`) because the tests want theirs on a port they can read.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLAYGROUND_BIN = ROOT / "tools" / "playground" / "node_modules" / ".bin" / "agentsplayground"
PLAYGROUND_VERSION = "0.2.28"
_LISTENING = re.compile(r"Listening on\D*(\d+)")
# Settings of the bot that the test environment must not leak into the product under test (a CI's
# REDIS_URL, a developer's real Xero client id...): the devserver fills in the sandbox's own.
_PRODUCT_ENV = re.compile(
    r"^(REDIS_URL|XERO_.*|DYNAMICS_.*|ENTRA_.*|DATAVERSE_.*|MICROSOFT_APP_.*|BOT_.*|CA_BUNDLE|SANDBOX.*|"
    r"TOKEN_ENCRYPTION_KEYS|PUBLIC_BASE_URL|DATA_DIR|PORT|HOST|LOG_LEVEL|RUN_SCHEDULER|SCHEDULER_.*|PLAYGROUND)$",
    re.IGNORECASE,
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen[bytes] | None, grace: float = 10.0) -> None:
    """SIGTERM this one process (ours, by its id), then SIGKILL if it does not go in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# What `make test` installs for these tests where it can (as root, with apt-get).
APT_PACKAGES = "chromium chromium-driver fonts-dejavu-core fonts-noto-color-emoji"


def missing_tools() -> str | None:
    """What the e2e tests lack here and how to install it, in one line; None when nothing is missing."""
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return f"Chromium is not installed: install it with `sudo apt-get install {APT_PACKAGES}`"
    if not shutil.which("node"):
        return "Node.js (20+) is not installed, which the Agents Playground needs: `sudo apt-get install nodejs npm`"
    if not PLAYGROUND_BIN.exists():
        return f"the Agents Playground is not installed: run `npm install` in {PLAYGROUND_BIN.parents[2]}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: `pip install -e '.[dev]'` (or `make test`) installs it"
    return None


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, missing_tools()
    return path


@dataclass
class Product:
    """`python -m sandbox.devserver`: Xero, Entra and Dataverse sandboxes and the bot, anonymous mode."""

    data_dir: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    xero_port: int = field(default_factory=free_port)
    entra_port: int = field(default_factory=free_port)
    entra_pages_port: int = field(default_factory=free_port)
    dataverse_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bot_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def xero_url(self) -> str:
        return f"http://127.0.0.1:{self.xero_port}"

    @property
    def entra_url(self) -> str:
        return f"https://localhost:{self.entra_port}"

    @property
    def entra_pages_url(self) -> str:
        """Entra's sign-in pages, as the browser sees them: plain http on the loopback, no certificate."""
        return f"http://127.0.0.1:{self.entra_pages_port}"

    @property
    def dataverse_url(self) -> str:
        return f"http://127.0.0.1:{self.dataverse_port}"

    def start(self, timeout: float = 60.0) -> Product:
        env = {k: v for k, v in os.environ.items() if not _PRODUCT_ENV.match(k)}
        env.update(
            PORT=str(self.port),
            HOST="127.0.0.1",
            PUBLIC_BASE_URL=self.bot_url,
            SANDBOX_XERO_PORT=str(self.xero_port),
            SANDBOX_ENTRA_PORT=str(self.entra_port),
            SANDBOX_ENTRA_PAGES_PORT=str(self.entra_pages_port),
            SANDBOX_DATAVERSE_PORT=str(self.dataverse_port),
            DATA_DIR=str(self.data_dir),
            PLAYGROUND="0",
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
        )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        # cwd is a scratch directory so that a developer's .env in the checkout does not apply; this
        # checkout comes first on the path (app.py is not an installed module).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandbox.devserver"],
            cwd=self.data_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        ports = [self.xero_port, self.entra_port, self.entra_pages_port, self.dataverse_port, self.port]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the devserver exited with {self.proc.returncode} before listening:\n{_tail(self.log_path)}"
                )
            if all(_port_open(p) for p in ports):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the devserver did not listen on {ports} within {timeout:.0f} s:\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        _stop(self.proc)


@dataclass
class Playground:
    """The Microsoft 365 Agents Playground (Node.js), pointed at the bot, on a port of its own."""

    bot_port: int
    work_dir: Path
    log_path: Path
    requested_port: int = field(default_factory=free_port)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> Playground:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, TEAMSAPPTESTER_BROWSER="none")
        for name in (
            "BOT_ENDPOINT",
            "TEAMSAPPTESTER_PORT",
            "DEFAULT_CHANNEL_ID",
            "SEND_INSTALLATION_ACTIVITY",
        ):
            env.pop(name, None)
        log = self.log_path.open("wb")
        # cwd is empty so that no .m365agentsplayground.yml of a developer's changes the mock data.
        self.proc = subprocess.Popen(
            [
                str(PLAYGROUND_BIN),
                "start",
                "-e",
                f"http://127.0.0.1:{self.bot_port}/api/messages",
                "-c",
                "msteams",
                "-p",
                str(self.requested_port),
                "--disable-telemetry",
            ],
            cwd=self.work_dir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the Playground exited with {self.proc.returncode}:\n{_tail(self.log_path)}"
                )
            # When the port is taken the Playground silently takes another: believe its own line.
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match and _port_open(int(match.group(1))):
                self.port = int(match.group(1))
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the Playground did not say where it listens within {timeout:.0f} s:\n{_tail(self.log_path)}"
        )

    def stop(self) -> None:
        _stop(self.proc)


if __name__ == "__main__":
    # `make test` asks this before the suite: one line and exit code 1 when the e2e tests cannot run.
    missing = missing_tools()
    if missing is not None:
        sys.stderr.write(f"the end-to-end tests cannot run: {missing}; or opt out with `E2E=0 make test`\n")
        raise SystemExit(1)
