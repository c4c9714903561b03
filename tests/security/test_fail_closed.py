"""Fail closed (issue 14): a production configuration without an app id does not start; the anonymous
opt-in listens on loopback only and answers only local channels; sandbox mode never reaches a real
provider.

The attack reproduced: real-looking Xero and Dynamics credentials and encryption keys, no
`MICROSOFT_APP_ID`. Before the fix the bot started on every interface and accepted unsigned
activities from anyone who could reach the port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from bot.config import load_settings
from bot.errors import ConfigError
from tests.conftest import free_port
from tests.security.endpoint_app import ClientFactory, activity, build_product

ROOT = Path(__file__).resolve().parents[2]
_PRODUCT_PREFIXES = (
    "MICROSOFT_", "XERO_", "DYNAMICS_", "ENTRA_", "DATAVERSE_", "REDIS_", "TOKEN_", "SANDBOX", "PORT", "HOST",
    "PUBLIC_BASE_URL", "DATA_DIR", "DANGEROUSLY_", "CA_BUNDLE", "BOT_",
)


def production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What an operator would set for production, minus the app id: real provider URLs (the defaults)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PRODUCT_PREFIXES)}
    env.update(
        XERO_CLIENT_ID="0F6D3B9A1C2E4F5A8B7C6D5E4F3A2B1C",
        XERO_CLIENT_SECRET="xs_9f8e7d6c5b4a39281706f5e4d3c2b1a0z9y8x7w6v5u4t3s2",
        DYNAMICS_CLIENT_ID="5d2a7c1e-8b4f-4e6a-9c3d-2f1b0a9e8d7c",
        DYNAMICS_CLIENT_SECRET="Qx98Q~abcdefGHIJKLmnopQRSTuvwxYZ0123456789",
        TOKEN_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DATA_DIR=str(tmp_path / "data"),
        PORT=str(free_port()),
        PYTHONPATH=str(ROOT),
    )
    env.update(extra)
    return env


def production_settings(tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    env = production_env(tmp_path)
    return {
        "_env_file": None,
        "xero_client_id": env["XERO_CLIENT_ID"],
        "xero_client_secret": env["XERO_CLIENT_SECRET"],
        "dynamics_client_id": env["DYNAMICS_CLIENT_ID"],
        "dynamics_client_secret": env["DYNAMICS_CLIENT_SECRET"],
        "token_encryption_keys": env["TOKEN_ENCRYPTION_KEYS"],
        "data_dir": tmp_path / "data",
        **overrides,
    }


@pytest.fixture(autouse=True)
def _no_product_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(_PRODUCT_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def listening_addresses(port: int) -> set[str]:
    """The local addresses a socket LISTENs on for `port` (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


def test_production_settings_without_an_app_id_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**production_settings(tmp_path)).check_serving()
    assert str(info.value).startswith("MICROSOFT_APP_ID")
    assert "DANGEROUSLY_ALLOW_ANONYMOUS" in str(info.value)
    # Control: the same settings with an app id load, and so does the explicit opt-in.
    secured = load_settings(**production_settings(tmp_path, microsoft_app_id="app", microsoft_app_password="pw"))
    secured.check_serving()
    assert not secured.sandbox_mode
    assert not secured.anonymous_bot
    opted_in = load_settings(**production_settings(tmp_path, dangerously_allow_anonymous=True))
    opted_in.check_serving()
    assert opted_in.anonymous_bot
    assert opted_in.bind_host == "127.0.0.1"  # HOST defaults to every interface: not for an anonymous bot
    assert secured.bind_host == "0.0.0.0"


def test_python_app_py_without_an_app_id_exits_2_with_one_line(tmp_path: Path) -> None:
    env = production_env(tmp_path)
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "MICROSOFT_APP_ID" in lines[0]
    assert "Traceback" not in result.stderr
    assert not listening_addresses(int(env["PORT"]))


async def test_the_product_without_an_app_id_is_not_even_built(tmp_path: Path) -> None:
    """`create_app` (what every composition serving /api/messages uses) refuses too, before the store."""
    given = production_settings(tmp_path)
    given.pop("_env_file")
    given.pop("data_dir")
    with pytest.raises(ConfigError, match="MICROSOFT_APP_ID"):
        await build_product(tmp_path / "product", **given)
    assert not (tmp_path / "product" / "connector.db").exists()


def test_with_the_opt_in_it_starts_on_loopback_only(tmp_path: Path) -> None:
    env = production_env(tmp_path, DANGEROUSLY_ALLOW_ANONYMOUS="true", HOST="0.0.0.0")
    port = int(env["PORT"])
    log = (tmp_path / "app.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()[-2000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the app did not listen"
                time.sleep(0.1)
        # Listening, and only on 127.0.0.1 (hex, little-endian in /proc), not on 0.0.0.0 or ::.
        assert listening_addresses(port) == {"0100007F"}
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert "listening on 127.0.0.1 only" in (tmp_path / "app.log").read_text()


async def test_anonymous_mode_answers_only_local_channels(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    """A remote caller cannot point the bot's replies and notifications at their own serviceUrl."""
    given = production_settings(tmp_path, dangerously_allow_anonymous=True)
    given.pop("_env_file")
    given.pop("data_dir")
    product = await build_product(tmp_path, **given)
    client = await aiohttp_client(product.app)
    for remote in ("https://smba.trafficmanager.net/amer/", "https://attacker.example/", "http://localhost.evil.example/",
                   "http://10.0.0.5:3978/", "not a url"):
        body = activity("event", conversation=f"a:{remote[:12]}", service_url=remote)
        response = await client.post("/api/messages", json=body)
        assert response.status == 401, remote
        assert not await product.reached_bot(body)
    local = activity("event", conversation="a:local", service_url="http://127.0.0.1:9/")
    response = await client.post("/api/messages", json=local)
    assert response.status in {200, 201}
    assert await product.reached_bot(local)


@pytest.mark.parametrize(
    ("field", "real"),
    [
        ("xero_login_url", "https://login.xero.com"),
        ("xero_identity_url", "https://identity.xero.com"),
        ("xero_api_url", "https://api.xero.com"),
        ("entra_authority_host", "https://login.microsoftonline.com"),
        ("dataverse_discovery_url", "https://globaldisco.crm.dynamics.com"),
        ("dataverse_discovery_url", "https://GLOBALDISCO.crm4.Dynamics.com."),
    ],
)
def test_sandbox_mode_refuses_real_provider_urls(tmp_path: Path, field: str, real: str) -> None:
    local = {name: "http://127.0.0.1:9" for name in (
        "xero_login_url", "xero_identity_url", "xero_api_url", "entra_authority_host", "dataverse_discovery_url"
    )}
    sandbox = production_settings(tmp_path, sandbox=True, **local)
    assert load_settings(**sandbox).sandbox_mode  # control: the sandbox's own URLs are fine
    with pytest.raises(ConfigError) as info:
        load_settings(**{**sandbox, field: real})
    assert str(info.value).startswith(field.upper())


def test_sandbox_true_with_real_credentials_and_default_urls_does_not_start(tmp_path: Path) -> None:
    """`SANDBOX=true` next to real credentials would keep real tokens under the development key."""
    env = production_env(tmp_path, SANDBOX="true")
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "sandbox mode must not reach the real service" in lines[0]
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())
