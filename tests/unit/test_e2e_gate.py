"""The rule for the end-to-end tests: they run, or the run fails saying what is missing, unless E2E=0.

Each case runs the real thing in a child process with a PATH that has no Chromium on it (and an `id`
that says "not root", so nothing can be installed): `make e2e-deps`, pytest on tests/e2e, and pytest
with E2E=0. No browser starts: a missing tool is found before any product or Playground would.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _bare_path(tmp_path: Path) -> str:
    """A PATH with make and a non-root `id`, and neither Chromium nor apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_id = bin_dir / "id"
    fake_id.write_text("#!/bin/sh\necho 1000\n")
    fake_id.chmod(0o755)
    make = shutil.which("make")
    if make:
        (bin_dir / "make").symlink_to(make)
    return str(bin_dir)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("E2E", "E2E_REQUIRED", "PYTEST_ADDOPTS")}
    env.update(PATH=_bare_path(tmp_path), **extra)
    return env


def _pytest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_make_stops_with_one_line_when_chromium_cannot_be_installed(tmp_path: Path) -> None:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    result = subprocess.run(
        # -o: the virtualenv counts as installed (this checks the e2e step, not pip).
        ["make", "--no-print-directory", "-o", ".venv/.installed", "e2e-deps"],
        cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if "end-to-end" in line]
    assert len(ours) == 1, result.stderr
    assert "Chromium is not installed" in ours[0]
    assert "apt-get install chromium" in ours[0]
    assert "E2E=0" in ours[0]


def test_make_installs_nothing_and_passes_with_e2e_0(tmp_path: Path) -> None:
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "e2e-deps"],
        cwd=ROOT, env=_env(tmp_path, E2E="0"), capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "E2E=0: the end-to-end tests will not run" in result.stdout


def test_pytest_fails_the_e2e_tests_when_a_tool_is_missing(tmp_path: Path) -> None:
    result = _pytest(tmp_path, _env(tmp_path))
    assert result.returncode == 1, result.stdout[-2000:]
    assert "the end-to-end tests cannot run: Chromium is not installed" in result.stdout
    assert " skipped" not in result.stdout.splitlines()[-1]


def test_pytest_says_the_e2e_tests_did_not_run_with_e2e_0(tmp_path: Path) -> None:
    result = _pytest(tmp_path, _env(tmp_path, E2E="0"))
    # Nothing else was named, so nothing was collected (5): the e2e modules were not even imported.
    assert result.returncode == 5, result.stdout[-2000:]
    assert "end-to-end tests not run: E2E=0" in result.stdout
