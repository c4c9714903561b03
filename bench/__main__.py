"""`python -m bench [part ...] [--quick]`: run the benchmarks, print their tables, write bench/results.json.

Parts, in the order they run: `turns` (bot turns), `sync` (sync cost), `scale` (10,000 connections),
`sizes` (10,000 and 100,000 connections on a Redis Cluster, stand-in runs), `first` (time to first
result); numbers 1-4 (3b for sizes) work too. With no part named, all of them run. Running some
parts replaces only their entries in results.json, so one part can be re-measured alone.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import log, machine, rounded

RESULTS = Path(__file__).resolve().parent / "results.json"

# name -> (module, key in results.json, title)
PARTS: dict[str, tuple[str, str, str]] = {
    "turns": ("bench.bot_turns", "bot_turns", "1. Bot turns"),
    "sync": ("bench.sync_cost", "sync_cost", "2. Sync cost"),
    "scale": ("bench.scale", "scale", "3. Scale"),
    "sizes": ("bench.scale_sizes", "scale_sizes", "3b. Scale by size"),
    "first": ("bench.first_result", "time_to_first_result", "4. Time to first result"),
}
ALIASES = {
    "1": "turns",
    "2": "sync",
    "3": "scale",
    "4": "first",
    "3b": "sizes",
    "bot": "turns",
    "turn": "turns",
    "cost": "sync",
    "first_result": "first",
    "ttfr": "first",
}


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "parts", nargs="*", help="turns, sync, scale, sizes, first (or 1-4, 3b); default: all"
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs and fewer repeats (a smoke test)")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"results file (default {RESULTS})")
    args = parser.parse_args(argv)
    chosen: list[str] = []
    for raw in args.parts or list(PARTS):
        name = ALIASES.get(raw.lower(), raw.lower())
        if name not in PARTS:
            parser.error(f"unknown part {raw!r}: choose from {', '.join(PARTS)} (or 1-4)")
        if name not in chosen:
            chosen.append(name)
    args.parts = [p for p in PARTS if p in chosen]
    return args


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def run(args: argparse.Namespace) -> int:
    results = load(args.out)
    results.setdefault("parts", {})
    results["machine"] = machine()
    started = time.perf_counter()
    targets: list[tuple[str, dict[str, Any]]] = []
    failed: list[str] = []
    for name in args.parts:
        module_name, key, title = PARTS[name]
        module = importlib.import_module(module_name)
        log(f"== {title}{' (quick)' if args.quick else ''}")
        part_started = time.perf_counter()
        try:
            result = await module.run(quick=args.quick)
        except Exception as exc:
            failed.append(name)
            log(f"!! {title} failed: {type(exc).__name__}: {exc}")
            import traceback

            traceback.print_exc()
            continue
        result["seconds"] = round(time.perf_counter() - part_started, 1)
        # The machine is shared: how busy it was around this part (1-minute load average, 2 CPUs).
        result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        result["quick"] = args.quick
        result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        results["parts"][key] = rounded(result)
        sys.stdout.write(f"\n## {title}  ({result['seconds']:.0f} s)\n\n{module.render(result)}\n")
        sys.stdout.flush()
        targets += [(title, t) for t in result.get("targets", [])]
        # Written after every part, so a later failure does not lose the earlier figures.
        args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    total = time.perf_counter() - started
    results["last_run"] = {
        "parts": args.parts,
        "quick": args.quick,
        "seconds": round(total, 1),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    args.out.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
    if targets:
        from bench.common import table

        rows = [(title.split(" ", 1)[1], t["target"], t["measured"], t["met"]) for title, t in targets]
        sys.stdout.write("\n## Targets\n\n" + table(["Part", "Target", "Measured", "Met"], rows) + "\n")
    m = results["machine"]
    sys.stdout.write(
        f"\n{m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python {m['python']}; "
        f"{total:.0f} s in all; results in {args.out}\n"
    )
    return 1 if failed else 0


def main() -> int:
    return asyncio.run(run(parse(sys.argv[1:])))


if __name__ == "__main__":
    raise SystemExit(main())
