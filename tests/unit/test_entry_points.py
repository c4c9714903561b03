"""Every `python -m ...` entry point answers `--help` with its usage and exit code 0, without starting
anything; the worker refuses the embedded SQLite store with one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # A scratch cwd: a developer's .env in the checkout must not change what is tested.
    clean = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATA_DIR")}
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), clean.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "mentions"),
    [
        ("bot.worker", "REDIS_URL"),
        ("bot.rotate_keys", "TOKEN_ENCRYPTION_KEYS"),
        ("sandbox", "SANDBOX_ENTRA_PAGES_PORT"),
        ("bench", "--quick"),
        ("manifest.build", "out_dir"),
    ],
)
def test_help_prints_usage_and_exits_0(module: str, mentions: str, tmp_path: Path) -> None:
    result = _run(["-m", module, "--help"], tmp_path, DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module} "), result.stdout[:200]
    assert mentions in result.stdout
    # Nothing was started or written: no data directory, no package, no results file.
    assert list(tmp_path.iterdir()) == []


def test_worker_refuses_the_sqlite_store_with_one_line(tmp_path: Path) -> None:
    result = _run(["-m", "bot.worker"], tmp_path, DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "REDIS_URL is not set" in lines[0]
    assert "Redis store" in lines[0]
    assert not (tmp_path / "data" / "connector.db").exists()


def test_the_old_worker_module_refuses_to_start_rather_than_idle(tmp_path: Path) -> None:
    """`python -m bot.sync.worker` was the entry point before `bot.worker`: a deployment still using it
    must fail loudly (exit 2, one line), not exit 0 having run nothing."""
    result = _run(["-m", "bot.sync.worker"], tmp_path, DATA_DIR=str(tmp_path / "data"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "bot.sync.worker is no longer an entry point: start workers with `python -m bot.worker`"
    )


@pytest.mark.parametrize("module", ["bot.worker", "bot.rotate_keys"])
def test_a_bad_setting_is_one_line_and_exit_code_2(module: str, tmp_path: Path) -> None:
    """The entry points share `bot.config.config_errors_exit` (app.py's own is in test_fail_closed)."""
    result = _run(["-m", module], tmp_path, DATA_DIR=str(tmp_path / "data"), PORT="abc")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "configuration error: PORT: Input should be a valid integer, unable to parse string as an integer"
    ]
