"""Part 3, scale: 10,000 connections on the 10-minute plan, worker processes on one Redis.

What runs is the product: `python -m bot.worker` processes (production scheduling settings: poll
1 s, lease 120 s; the default WORKER_CONCURRENCY, 32) on a redis-server of our own, against the sandboxes with
latency (Xero 150 ms, Dataverse 100 ms a call). Each connection has its own small Xero organisation and is
in the steady state a successful run leaves (bench/scale_fleet.py), so its scheduled runs are what most
runs on a 10-minute plan are: 4 Xero reads, nothing changed, the run's status written to Dynamics.

Phase A, two workers: the 10,000 connections are due evenly over the plan's 10 minutes (16.7 runs a
second, the plan's own rate: no compression), in random order. To fit the time budget the bench watches
the first `observe` seconds of that cycle and stops the workers; the connections due later stay in the
due set all along (the scheduler and Redis hold all 10,000), and must not run early. Checked for every
run due in the window: it starts within 30 s of its due time, none twice, none skipped, no Xero 429.

Phase B, one worker: connections that have not run yet, due at a rate rising linearly from half the
plan's rate to four times it, plus a "sync now" (an on-demand entry) every few seconds for connections
kept out of the ramp. Reported: when, and at what rate, the scheduled runs fall behind (start more than
30 s late), the most runs it starts in a second, and how long "sync now" waits meanwhile.

Memory per connection: what Redis holds (the due set alone, and everything), what a Scheduler keeps in
its process after reconciling all connections (tracemalloc; one worker an hour does it, under the fleet's
reconcile lock), and the workers' resident memory. How the bot and an idle worker grow with the number
of connections, to 100,000, is part 3b (bench/scale_sizes.py).
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import log, median, mib, percentile, redis_server, redis_used_memory
from bench.scale_fleet import make_fleet
from bench.scale_report import render, targets
from bench.scale_workers import Monitor, start_workers, stop_workers
from bot.storage.base import Store
from bot.sync.scheduler import Scheduler
from bot.sync.worker import DEFAULT_CONCURRENCY
from tests.integration.harness import Harness, open_harness

PLAN = "standard"  # the 10-minute plan
INTERVAL = 600.0
START_BUDGET = 30.0
BEHIND = 5.0  # a median start delay above this (seconds) means the queue is growing: falling behind
XERO_LATENCY = 0.150
DATAVERSE_LATENCY = 0.100
PARKED = 3600.0  # where due times wait while the workers start (they must not see anything due)
ON_DEMAND_PROBES = 12


@dataclass(frozen=True)
class Setup:
    connections: int
    cycle: float  # phase A: due times evenly spread over this many seconds
    observe: float  # phase A: how much of the cycle is watched
    ramp_window: float  # phase B
    ramp_from: float  # phase B's rate, as multiples of phase A's
    ramp_to: float
    concurrency: int  # WORKER_CONCURRENCY
    accounts: int = 10


FULL = Setup(10_000, INTERVAL, 180.0, 90.0, 0.5, 4.0, DEFAULT_CONCURRENCY)
# The quick run keeps the plan's rate (16.7 runs a second) with a tenth of the connections.
QUICK = Setup(1_000, INTERVAL / 10, 30.0, 20.0, 0.5, 4.0, DEFAULT_CONCURRENCY)


async def run(quick: bool = False) -> dict[str, Any]:
    setup = QUICK if quick else FULL
    with redis_server() as redis, tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        async with open_harness(Path(tmp), redis_url=redis.url) as h:
            # One Dynamics user in one environment stands for 10,000 customers' users here, so the
            # per-user service protection limits (6,000 requests / 5 min) are lifted: each real
            # customer has their own allowance.
            h.dataverse.set_limits(max_requests=10**9, max_execution_ms=10**12, max_concurrent=10**6)
            base = redis_used_memory(redis.url)
            log(f"   making {setup.connections:,} connections")
            fleet = await make_fleet(h, setup.connections, plan=PLAN, accounts=setup.accounts)
            log(f"   {setup.connections:,} connections in {fleet.seconds:.0f} s")
            memory: dict[str, Any] = {
                "store_bytes_per_connection": (redis_used_memory(redis.url) - base) / setup.connections,
                "fleet_seconds": fleet.seconds,
            }
            parked = time.time() + PARKED
            before = redis_used_memory(redis.url)
            await schedule_dues(h.store, dict.fromkeys(fleet.ids, parked))
            memory["due_set_bytes_per_connection"] = (
                redis_used_memory(redis.url) - before
            ) / setup.connections
            memory.update(await _scheduler_memory(h, setup.connections))
            memory.update(await _watcher_scan(h))
            h.xero.set_latency(XERO_LATENCY)
            h.dataverse.set_latency(DATAVERSE_LATENCY)
            env = _worker_env(h, setup)
            pids = {"bench (sandboxes)": os.getpid(), "redis": redis.pid}
            order = list(fleet.ids)
            random.Random(8).shuffle(order)
            a = await _phase_a(h, order, setup, env, Path(tmp), pids)
            b = await _phase_b(h, order[a["runs_due"] :], setup, env, Path(tmp), a["rate"], pids)
            memory["store_bytes_per_connection_after_runs"] = (
                redis_used_memory(redis.url) - base
            ) / setup.connections
    result: dict[str, Any] = {
        "connections": setup.connections,
        "plan": PLAN,
        "org_accounts": setup.accounts,
        "worker_concurrency": setup.concurrency,
        "latency_seconds": {"xero": XERO_LATENCY, "dataverse": DATAVERSE_LATENCY},
        "rate_vs_plan": (setup.connections / setup.cycle) / (10_000 / INTERVAL),
        "memory": memory,
        "two_workers": a,
        "one_worker": b,
    }
    result["targets"] = targets(result)
    return result


def _worker_env(h: Harness, setup: Setup) -> dict[str, str]:
    env = h.settings_env()
    # Production scheduling settings (the harness's are shortened for tests).
    env.pop("SCHEDULER_POLL_SECONDS", None)
    env.pop("RUN_LEASE_SECONDS", None)
    env.update(
        {"WORKER_CONCURRENCY": str(setup.concurrency), "WORKER_GRACE_SECONDS": "20", "LOG_LEVEL": "INFO"}
    )
    return env


async def schedule_dues(store: Store, dues: dict[str, float], *, on_demand: bool = False) -> None:
    """Write due times, earliest first, 50 at a time (RedisStore's pool holds 100 connections)."""
    items = sorted(dues.items(), key=lambda kv: kv[1])
    for start in range(0, len(items), 50):
        await asyncio.gather(
            *(
                store.schedule(cid, datetime.fromtimestamp(due, UTC), on_demand=on_demand)
                for cid, due in items[start : start + 50]
            )
        )


async def _scheduler_memory(h: Harness, n: int) -> dict[str, Any]:
    """What a Scheduler holds per connection after reconciling them all, as a worker does at start."""
    scheduler = Scheduler(h.store, h.runtime.engine, owner="bench-memory")
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    fixed = await scheduler.reconcile()
    seconds = time.perf_counter() - started
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "scheduler_retained_bytes_per_connection": (current - base) / n,
        "scheduler_reconcile_peak_mib": mib(peak - base),
        "scheduler_reconcile_seconds_traced": seconds,
        "scheduler_reconcile_fixed": fixed,
    }


async def _watcher_scan(h: Harness) -> dict[str, Any]:
    """A full rescan (`RunWatcher.scan_once`) of every connection's runs, before any has run: what the
    bot's watcher cost every 3 s before it read the run-event feed instead (part 3b measures that)."""
    from bot.teams.run_watcher import RunWatcher

    # No run exists yet, so the pass only reads the store and never reaches the notifier.
    watcher = RunWatcher(h.store, None)  # type: ignore[arg-type]
    cpu = time.process_time()
    started = time.perf_counter()
    await watcher.scan_once()
    return {
        "watcher_scan_seconds": time.perf_counter() - started,
        "watcher_scan_cpu_seconds": time.process_time() - cpu,
    }


# ---- phase A: two workers, the plan's rate --------------------------------------------------------


async def _phase_a(
    h: Harness, order: list[str], setup: Setup, env: dict[str, str], tmp: Path, pids: dict[str, int]
) -> dict[str, Any]:
    n = len(order)
    rate = n / setup.cycle
    log(
        f"   phase A: two workers; {n:,} connections due over {setup.cycle:.0f} s ({rate:.1f}/s), "
        f"watching the first {setup.observe:.0f} s"
    )
    workers, ready = await start_workers(2, env, tmp, "a")
    monitor = Monitor(h, pids)
    t0 = time.time() + 2.0
    dues = {cid: t0 + i / rate for i, cid in enumerate(order)}
    await schedule_dues(h.store, dues)
    end = t0 + setup.observe
    await monitor.watch(workers, until=lambda _started: time.time() > end + 3, give_up_at=end + 3)
    exits = await stop_workers(workers)
    watched = {cid: due for cid, due in dues.items() if due < end}
    later = {cid: due for cid, due in dues.items() if due >= end}
    runs = await runs_since(h.store, watched, since=t0 - 1)
    early = await runs_since(h.store, later, since=t0 - 1)
    started = [r for r in runs.values() if r["count"] >= 1]
    delays = [r["delay"] for r in started]
    return {
        "rate": rate,
        "cycle_s": setup.cycle,
        "observed_s": setup.observe,
        "runs_due": len(watched),
        "started": len(started),
        "skipped": sum(1 for r in runs.values() if r["count"] == 0),
        "twice": sum(1 for r in runs.values() if r["count"] > 1),
        # A scheduler claims only what is due: no run may start before its due time (1 s for clocks).
        "ran_before_due": sum(
            1 for r in (*runs.values(), *early.values()) if r["count"] > 0 and r["delay"] < -1.0
        ),
        "ran_after_window": sum(1 for r in early.values() if r["count"] > 0),
        "outcomes": _outcomes(runs),
        "delay_s": _spread(delays),
        "late": sum(1 for d in delays if d > START_BUDGET),
        "run_seconds": _spread([r["duration"] for r in started]),
        "cpu": monitor.cpu_summary(len(started)),
        "xero": monitor.xero_summary(),
        "dataverse_429": monitor.dataverse_429(),
        "workers_ready_s": ready,
        "workers": [w.summary() for w in workers],
        "worker_exit_codes": exits,
        "timeline": monitor.timeline(watched, runs, bin_seconds=max(10.0, setup.observe / 12), t0=t0),
    }


async def runs_since(store: Store, dues: dict[str, float], since: float) -> dict[str, dict[str, Any]]:
    """Each connection's runs since `since`: how many, outcomes, the first one's start delay and length."""
    out: dict[str, dict[str, Any]] = {}
    items = list(dues.items())
    for start in range(0, len(items), 50):
        chunk = items[start : start + 50]
        found = await asyncio.gather(*(store.list_runs(cid, limit=20) for cid, _ in chunk))
        for (cid, due), records in zip(chunk, found, strict=True):
            mine = sorted(
                (r for r in records if r.started_at.timestamp() >= since), key=lambda r: r.started_at
            )
            first = mine[0] if mine else None
            out[cid] = {
                "count": len(mine),
                "outcomes": [r.outcome.value for r in mine],
                "due": due,
                "delay": first.started_at.timestamp() - due if first else math.nan,
                "started": first.started_at.timestamp() if first else math.nan,
                "duration": (first.duration_seconds or math.nan) if first else math.nan,
            }
    return out


def _outcomes(runs: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in runs.values():
        for outcome in r["outcomes"]:
            counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _spread(values: list[float]) -> dict[str, float]:
    values = [v for v in values if not math.isnan(v)]
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values) if values else math.nan,
        "min": min(values) if values else math.nan,
        "median": median(values),
    }


# ---- phase B: one worker, rising rate ------------------------------------------------------------


def _ramp(n: int, r0: float, r1: float, window: float) -> list[float]:
    """Offsets of n due times whose rate rises linearly from r0 to r1 over `window` seconds."""
    a = (r1 - r0) / (2 * window)
    return [(-r0 + math.sqrt(r0 * r0 + 4 * a * i)) / (2 * a) if a else i / r0 for i in range(n)]


async def _phase_b(
    h: Harness,
    fresh: list[str],
    setup: Setup,
    env: dict[str, str],
    tmp: Path,
    rate: float,
    pids: dict[str, int],
) -> dict[str, Any]:
    probes, pool = fresh[:ON_DEMAND_PROBES], fresh[ON_DEMAND_PROBES:]
    r0, r1 = rate * setup.ramp_from, rate * setup.ramp_to
    n = min(len(pool), int((r0 + r1) / 2 * setup.ramp_window))
    window = 2 * n / (r0 + r1)
    log(f"   phase B: one worker; {n:,} runs due over {window:.0f} s, {r0:.0f}/s rising to {r1:.0f}/s")
    workers, ready = await start_workers(1, env, tmp, "b")
    monitor = Monitor(h, pids)
    t0 = time.time() + 2.0
    dues = {cid: t0 + off for cid, off in zip(pool[:n], _ramp(n, r0, r1, window), strict=True)}
    await schedule_dues(h.store, dues)
    asks: dict[str, float] = {}

    async def sync_now() -> None:
        for k, cid in enumerate(probes):
            at = t0 + (k + 0.5) * window / len(probes)
            await asyncio.sleep(max(0.0, at - time.time()))
            asks[cid] = time.time()
            await h.store.schedule(cid, datetime.now(UTC), on_demand=True)

    asker = asyncio.create_task(sync_now())
    end = t0 + window + START_BUDGET
    await monitor.watch(workers, until=lambda _started: time.time() > end, give_up_at=end)
    await asker
    exits = await stop_workers(workers)
    runs = await runs_since(h.store, dues, since=t0 - 1)
    on_demand = await runs_since(h.store, asks, since=t0 - 1)
    bins = monitor.timeline(dues, runs, bin_seconds=max(5.0, window / 12), t0=t0)
    first_late = next((b for b in bins if b["late"] > 0 or b["not_started"] > 0), None)
    behind = next((b for b in bins if b["delay_p50"] > BEHIND or b["not_started"] > 0), None)
    started = [r for r in runs.values() if r["count"] >= 1]
    return {
        "rate_from": r0,
        "rate_to": r1,
        "window_s": window,
        "runs_due": n,
        "started_by_end": len(started),
        "not_started_by_end": n - len(started),
        "twice": sum(1 for r in runs.values() if r["count"] > 1),
        "outcomes": _outcomes(runs),
        "delay_s": _spread([r["delay"] for r in started]),
        "late": sum(1 for r in started if r["delay"] > START_BUDGET),
        "run_seconds": _spread([r["duration"] for r in started]),
        "behind_at_s": behind["t"] if behind else None,
        "behind_due_rate": behind["due_rate"] if behind else None,
        "first_late_at_s": first_late["t"] if first_late else None,
        "first_late_due_rate": first_late["due_rate"] if first_late else None,
        "max_start_rate": max((b["start_rate"] for b in bins), default=math.nan),
        "on_demand_wait_s": _spread([r["delay"] for r in on_demand.values() if r["count"] >= 1]),
        "on_demand_started": sum(1 for r in on_demand.values() if r["count"] >= 1),
        "on_demand_asked": len(asks),
        "cpu": monitor.cpu_summary(len(started)),
        "xero": monitor.xero_summary(),
        "dataverse_429": monitor.dataverse_429(),
        "workers_ready_s": ready,
        "workers": [w.summary() for w in workers],
        "worker_exit_codes": exits,
        "timeline": bins,
    }


__all__ = ["FULL", "QUICK", "Setup", "render", "run"]
