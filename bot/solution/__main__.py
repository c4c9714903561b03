"""`python -m bot.solution [--out build/solution] [--version 1.1.0.0]`: writes the managed and the
unmanaged solution zips and prints their paths (this is a command-line tool: its output is the paths)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.solution.package import build_zip
from bot.solution.version import solution_version, zip_filename


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.solution",
        description="Build the Dataverse solution zips (managed and unmanaged) from bot/sync/tables.py.",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("build/solution"), help="output folder (default: build/solution)"
    )
    parser.add_argument(
        "--version", help="solution version, padded to four parts (default: the project's version)"
    )
    args = parser.parse_args(argv)
    version = args.version or solution_version()
    args.out.mkdir(parents=True, exist_ok=True)
    for managed in (True, False):
        path = args.out / zip_filename(managed=managed, version=version)
        path.write_bytes(build_zip(managed=managed, version=version))
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
