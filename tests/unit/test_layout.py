"""Every Python module in bot/, cards/, sandbox/ and tests/ stays under 400 lines: one job per file.

A module that grows past the limit is split by concern (see the GUIDE), not squeezed."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("bot", "cards", "sandbox", "tests")
MAX_LINES = 400


def line_count(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def oversized(root: Path = ROOT, limit: int = MAX_LINES) -> dict[str, int]:
    """Modules over `limit` lines, as paths relative to `root`."""
    found: dict[str, int] = {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.py")):
            if "artifacts" in path.parts:
                continue
            lines = line_count(path)
            if lines > limit:
                found[path.relative_to(root).as_posix()] = lines
    return found


def test_no_module_is_over_400_lines() -> None:
    assert oversized() == {}


def test_the_check_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "bot" / "sync").mkdir(parents=True)
    (tmp_path / "bot" / "sync" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (tmp_path / "bot" / "sync" / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert oversized(tmp_path) == {"bot/sync/long.py": MAX_LINES + 1}
