"""The sign-in keeper's settings: read from the environment, with limits that keep it ahead of the providers."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError
from bot.sync.keepalive import ATTENTION, KeeperPolicy, Lapse, Provider
from bot.sync.ports import AttentionReason


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("SIGNIN_", "XERO_", "DYNAMICS_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_refresh_well_before_the_providers_drop_a_sign_in() -> None:
    policy = KeeperPolicy.from_settings(load_settings())
    assert policy.interval == timedelta(hours=1)
    assert policy.xero_idle == timedelta(days=30) < timedelta(days=60)
    assert policy.dynamics_idle == timedelta(days=30) < timedelta(days=90)
    assert policy.warn_before == timedelta(days=7)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNIN_KEEPER_INTERVAL_SECONDS", "600")
    monkeypatch.setenv("XERO_REFRESH_IDLE_DAYS", "20")
    monkeypatch.setenv("DYNAMICS_REFRESH_IDLE_DAYS", "45")
    monkeypatch.setenv("SIGNIN_WARN_DAYS", "3")
    monkeypatch.setenv("SIGNIN_KEEPER_BATCH", "50")
    policy = KeeperPolicy.from_settings(load_settings())
    assert policy.interval == timedelta(minutes=10)
    assert (policy.xero_idle, policy.dynamics_idle) == (timedelta(days=20), timedelta(days=45))
    assert policy.warn_before == timedelta(days=3)
    assert policy.batch == 50


@pytest.mark.parametrize(
    ("name", "value"),
    [("XERO_REFRESH_IDLE_DAYS", "60"), ("DYNAMICS_REFRESH_IDLE_DAYS", "90"), ("SIGNIN_KEEPER_BATCH", "0")],
)
def test_a_threshold_past_the_providers_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_every_lapse_has_its_own_reason() -> None:
    assert set(ATTENTION) == {(p, lapse) for p in Provider for lapse in Lapse}
    assert len(set(ATTENTION.values())) == len(ATTENTION)
    assert ATTENTION[Provider.XERO, Lapse.REFUSED] is AttentionReason.XERO_RECONNECT
    assert ATTENTION[Provider.DYNAMICS, Lapse.EXPIRING] is AttentionReason.DYNAMICS_SIGNIN_EXPIRING
