"""Settings: read once, validated, one clear line for a bad value, exit 2 from the entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("MICROSOFT_", "XERO_", "DYNAMICS_", "REDIS_", "TOKEN_", "SANDBOX", "PORT")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_are_sandbox_mode_with_real_service_urls() -> None:
    settings = load_settings()
    assert settings.port == 3978
    assert settings.sandbox_mode
    assert settings.anonymous_bot
    assert settings.xero_api_url == "https://api.xero.com"
    assert settings.dataverse_discovery_url == "https://globaldisco.crm.dynamics.com"


def test_settings_are_frozen() -> None:
    settings = load_settings()
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=4001\nPUBLIC_BASE_URL=https://bot.example.com/\n")
    settings = load_settings()
    assert settings.port == 4001
    assert settings.public_base_url == "https://bot.example.com"
    assert settings.redirect_uri("xero") == "https://bot.example.com/oauth/xero/callback"


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"PUBLIC_BASE_URL": "not a url"}, "PUBLIC_BASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"MICROSOFT_APP_ID": "abc"}, "MICROSOFT_APP_PASSWORD"),
        ({"XERO_CLIENT_ID": "abc", "XERO_CLIENT_SECRET": "s"}, "TOKEN_ENCRYPTION_KEYS"),
        ({"MICROSOFT_APP_TYPE": "Weird"}, "MICROSOFT_APP_TYPE"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert needle in message
    assert "\n" not in message


def test_credentials_switch_sandbox_off_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XERO_CLIENT_ID", "id")
    monkeypatch.setenv("XERO_CLIENT_SECRET", "secret")
    monkeypatch.setenv("TOKEN_ENCRYPTION_KEYS", "k1, k2")
    settings = load_settings()
    assert not settings.sandbox_mode
    assert settings.token_encryption_keys == ("k1", "k2")
    monkeypatch.setenv("SANDBOX", "true")
    # Forced sandbox mode must not reach the real services (tests/security/test_fail_closed.py).
    for name in ("XERO_LOGIN_URL", "XERO_IDENTITY_URL", "XERO_API_URL", "ENTRA_AUTHORITY_HOST", "DATAVERSE_DISCOVERY_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    assert load_settings().sandbox_mode


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MICROSOFT_APP_ID", "app")
    monkeypatch.setenv("MICROSOFT_APP_PASSWORD", "very-secret-password")
    settings = load_settings()
    assert "very-secret-password" not in repr(settings)


def test_entry_point_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORT", "MICROSOFT_"))}
    env["PORT"] = "not-a-port"
    result = subprocess.run(
        [sys.executable, str(ROOT / "app.py")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "PORT" in lines[0]
    assert "Traceback" not in result.stderr
