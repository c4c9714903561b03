"""`python -m sandbox` starts all three sandboxes quickly and prints every setting the bot needs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bot.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_python_m_sandbox_starts_under_5_seconds_and_prints_settings(tmp_path: Path) -> None:
    env = dict(os.environ, DATA_DIR=str(tmp_path), SANDBOX_XERO_PORT="0", SANDBOX_ENTRA_PORT="0",
               SANDBOX_DATAVERSE_PORT="0")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "sandbox"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        values: dict[str, str] = {}
        assert proc.stdout is not None
        while "CA_BUNDLE" not in values:
            line = proc.stdout.readline()
            assert line, "the sandbox exited before printing its settings"
            name, _, value = line.strip().partition("=")
            values[name] = value
        elapsed = time.monotonic() - started
        assert elapsed < 5.0, f"took {elapsed:.1f} s"
        # The printed lines are valid settings for the bot, and they point at live servers.
        settings = load_settings(**{k.lower(): v for k, v in values.items()})
        assert settings.sandbox_mode
        assert settings.ca_bundle is not None
        assert settings.ca_bundle.exists()
        with httpx.Client(verify=str(settings.ca_bundle)) as client:
            oidc = client.get(f"{settings.entra_authority_host}/organizations/v2.0/.well-known/openid-configuration")
            assert oidc.status_code == 200
            assert oidc.json()["token_endpoint"].startswith("https://")
            page = client.get(f"{settings.xero_login_url}/identity/connect/authorize")
            assert page.status_code in {400, 500}  # no parameters: Xero's error page, never a redirect
    finally:
        proc.terminate()
        proc.wait(10)
