"""Worker processes for the scale benchmark, and what the bench watches while they run.

The workers are the product's own entry point, `python -m bot.worker`, started with the environment
the harness gives a worker subprocess. Progress is read where it cannot be faked: a run's first call is
GET Organisation, so the Xero sandbox's request log counts the runs started; the store's run records
say when each run started and how it ended (read after the workers stop).
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    busy_between,
    log,
    machine_cpu,
    median,
    mib,
    process_cpu_seconds,
    process_memory,
    python_path,
)
from tests.integration.harness import Harness

READY_LINE = "running (concurrency"


@dataclass
class Worker:
    proc: asyncio.subprocess.Process
    log_path: Path
    rss: list[int] = field(default_factory=list)
    peak_rss: int = 0
    start_rss: int = 0

    def sample(self) -> None:
        found = process_memory(self.proc.pid)
        if found:
            self.rss.append(found["rss"])
            self.peak_rss = max(self.peak_rss, found.get("peak_rss", 0))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def summary(self) -> dict[str, Any]:
        text = self.log_text()
        return {
            "start_rss_mib": mib(self.start_rss),
            "peak_rss_mib": mib(self.peak_rss),
            "end_rss_mib": mib(self.rss[-1]) if self.rss else math.nan,
            "lease_lost": text.count("lease lost"),
            "errors_logged": text.count(" ERROR "),
        }


async def start_workers(
    count: int, env: dict[str, str], tmp: Path, tag: str, module: str = "bot.worker"
) -> tuple[list[Worker], float]:
    """Start `count` workers (`python -m <module>`); return them once each has said it is running, and
    how long that took (imports, opening the store)."""
    began = time.monotonic()
    workers: list[Worker] = []
    for i in range(count):
        path = tmp / f"worker-{tag}{i + 1}.log"
        handle = path.open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            cwd=str(ROOT),
            env={**os.environ, **env, "PYTHONPATH": python_path()},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
        )
        handle.close()
        workers.append(Worker(proc, path))
    deadline = time.monotonic() + 120
    for worker in workers:
        while READY_LINE not in worker.log_text():
            if worker.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"a worker did not start:\n{worker.log_text()[-2000:]}")
            await asyncio.sleep(0.1)
        worker.sample()
        worker.start_rss = worker.rss[-1] if worker.rss else 0
    return workers, time.monotonic() - began


async def stop_workers(workers: list[Worker]) -> list[int | None]:
    for worker in workers:
        worker.sample()
        if worker.proc.returncode is None:
            worker.proc.send_signal(signal.SIGTERM)
    codes: list[int | None] = []
    for worker in workers:
        try:
            codes.append(await asyncio.wait_for(worker.proc.wait(), 60))
        except TimeoutError:
            worker.proc.kill()
            codes.append(await worker.proc.wait())
    return codes


class Monitor:
    """Counts from the sandboxes' request logs, from when it was made; samples the workers each second."""

    def __init__(self, h: Harness, pids: dict[str, int]) -> None:
        self.h = h
        self.x0 = len(h.xero.requests)
        self.d0 = len(h.dataverse.requests)
        self._seen = self.x0
        self.started = 0
        self.pids = dict(pids)  # other processes whose CPU time is counted (the bench's own, redis)
        self.cpu_start: dict[str, float] = {}
        self.cpu_end: dict[str, float] = {}
        self.seconds = 0.0
        self.machine: tuple[tuple[float, float], tuple[float, float]] | None = None

    def _cpu(self, workers: list[Worker]) -> dict[str, float]:
        pids = {**self.pids, **{f"worker {i + 1}": w.proc.pid for i, w in enumerate(workers)}}
        return {name: process_cpu_seconds(pid) for name, pid in pids.items()}

    def cpu_summary(self, runs: int) -> dict[str, Any]:
        """CPU seconds each process used while watched, and per run started, in ms."""
        used = {k: self.cpu_end.get(k, math.nan) - v for k, v in self.cpu_start.items()}
        total = sum(v for v in used.values() if not math.isnan(v))
        return {
            "seconds": used,
            "ms_per_run": {k: 1000 * v / runs if runs else math.nan for k, v in used.items()},
            "total_ms_per_run": 1000 * total / runs if runs else math.nan,
            "machine_busy": total / (self.seconds * (os.cpu_count() or 1)) if self.seconds else math.nan,
            # Every process on the machine, ours or not (the machine is shared).
            "machine_busy_all": busy_between(*self.machine) if self.machine else math.nan,
        }

    def _count_started(self) -> int:
        requests = self.h.xero.requests
        end = len(requests)
        self.started += sum(1 for r in requests[self._seen : end] if r.path.endswith("/Organisation"))
        self._seen = end
        return self.started

    async def watch(self, workers: list[Worker], until: Callable[[int], bool], give_up_at: float) -> None:
        last_log = 0.0
        self.cpu_start = self._cpu(workers)
        began, machine = time.monotonic(), machine_cpu()
        try:
            await self._watch(workers, until, give_up_at, last_log)
        finally:
            self.cpu_end = self._cpu(workers)
            self.seconds = time.monotonic() - began
            self.machine = (machine, machine_cpu())

    async def _watch(
        self, workers: list[Worker], until: Callable[[int], bool], give_up_at: float, last_log: float
    ) -> None:
        while True:
            started = self._count_started()
            for worker in workers:
                worker.sample()
                if worker.proc.returncode is not None:
                    raise RuntimeError(
                        f"a worker stopped (exit {worker.proc.returncode}):\n{worker.log_text()[-2000:]}"
                    )
            now = time.time()
            if until(started) or now > give_up_at:
                return
            if now - last_log >= 15:
                log(f"     {started:,} runs started")
                last_log = now
            await asyncio.sleep(1.0)

    def xero_summary(self) -> dict[str, int]:
        calls = [r for r in self.h.xero.requests[self.x0 :] if r.path.startswith("/api.xro/")]
        return {"calls": len(calls), "429": sum(1 for r in calls if r.status == 429)}

    def dataverse_429(self) -> int:
        return sum(1 for r in self.h.dataverse.requests[self.d0 :] if r.status == 429)

    @staticmethod
    def timeline(
        dues: dict[str, float],
        runs: dict[str, dict[str, Any]],
        *,
        bin_seconds: float,
        t0: float | None = None,
    ) -> list[dict[str, Any]]:
        """Per bin of due time: how many were due and started (per second), their start delays."""
        start = t0 if t0 is not None else min(dues.values())
        last = max(dues.values())
        bins: list[dict[str, Any]] = []
        edge = start
        while edge <= last:
            upper = edge + bin_seconds
            mine = [r for r in runs.values() if edge <= r["due"] < upper]
            delays = [r["delay"] for r in mine if r["count"] >= 1]
            started_here = sum(1 for r in runs.values() if r["count"] >= 1 and edge <= r["started"] < upper)
            bins.append(
                {
                    "t": round(edge - start),
                    "due_rate": len(mine) / bin_seconds,
                    "start_rate": started_here / bin_seconds,
                    "delay_p50": median(delays),
                    "duration_p50": median([r["duration"] for r in mine if r["count"] >= 1]),
                    "delay_max": max(delays) if delays else math.nan,
                    "late": sum(1 for d in delays if d > 30.0),
                    "not_started": sum(1 for r in mine if r["count"] == 0),
                }
            )
            edge = upper
        return bins
