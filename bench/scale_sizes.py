"""Part 3b, scale by size: 10,000 and 100,000 connections on one local three-node Redis Cluster.

The question is what grows with the number of connections. The sandboxes cannot serve 100,000 Xero
organisations here, so the runs are stand-ins (bench/standin_worker.py: the shipped worker, Scheduler and
store, with a run that does a steady-state run's store work and waits its 0.7 s of provider latency),
and the connections are bare records (no tokens, no fingerprints), at both sizes alike, so the two
sizes differ in one thing only: how many connections there are.

For each size, in one run (the cluster is emptied between sizes):
1. n connections on the 10-minute plan, every one in the due set, parked an hour ahead (nothing due).
   Redis memory per connection: the cluster's `used_memory` (all three nodes) before and after.
2. The bot (`bench.bot_server product`: the shipped app, its own scheduler off, as beside workers) and
   one worker, idle, for `idle` seconds: their CPU and resident memory. The fleet's reconcile lock is
   held, as it is by one worker an hour in a fleet (bot.sync.scheduler), so this is every other worker;
   the sign-in keeper is off in the bot: it reads every connection once an hour on one bot process, by
   design (each sign-in must be kept alive), and would land in the window at +30 s.
3. For 2 and then 4 workers: connections come due at the plan's rate (n / 600 a second) for `observe`
   seconds. Checked per run due: its start delay (schedule lag), started twice, not started by the end
   (skipped); and the bot's CPU per run while it reads the run-event feed and posts (nowhere: the
   connections have no conversation) what the workers ran.
Targets: the bot's and the idle worker's CPU and memory at the largest size within 20% of the smallest;
every run started within 30 s of its due time, none twice, none skipped.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Child, log, mib, percentile, process_cpu_seconds, process_memory, table
from bench.scale import runs_since, schedule_dues
from bench.scale_workers import Worker, start_workers, stop_workers
from bot.storage.base import Connection, Store
from bot.sync.scheduler import RECONCILE_LOCK
from tests.contract.cluster import LocalCluster
from tests.integration.harness import Harness, open_harness

INTERVAL = 600.0  # the 10-minute (Standard) plan
PARKED = 3600.0
START_BUDGET = 30.0
STANDIN = "bench.standin_worker"
WITHIN = 0.20
CPU_FLOOR = 1.0  # ms of CPU a second (0.1% of a core): below it, "within 20%" is clock-tick noise  # the bot's and an idle worker's figures at the largest size, against the smallest


@dataclass(frozen=True)
class Setup:
    sizes: tuple[int, ...]
    workers: tuple[int, ...]
    idle: float  # seconds the bot and one worker are watched with nothing due
    observe: float  # seconds of due runs per worker count


FULL = Setup((10_000, 100_000), (2, 4), idle=20.0, observe=60.0)
QUICK = Setup((1_000, 10_000), (2, 4), idle=8.0, observe=15.0)


async def run(quick: bool = False) -> dict[str, Any]:
    setup = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-sizes-") as tmp:
        cluster = LocalCluster.start(Path(tmp) / "cluster")
        try:
            async with open_harness(Path(tmp), redis_url=cluster.url) as h:
                sizes = []
                for n in setup.sizes:
                    cluster.flush()
                    sizes.append(await _size(h, cluster, n, setup, Path(tmp)))
        finally:
            cluster.stop()
    result: dict[str, Any] = {
        "store": "redis cluster, 3 nodes",
        "plan_interval_s": INTERVAL,
        "run": "stand-in (bench/standin_worker.py)",
        "setup": {
            "sizes": setup.sizes,
            "workers": setup.workers,
            "idle_s": setup.idle,
            "observe_s": setup.observe,
        },
        "sizes": sizes,
    }
    result["targets"] = targets(result)
    return result


def _env(h: Harness) -> dict[str, str]:
    env = h.settings_env()
    env.pop("SCHEDULER_POLL_SECONDS", None)  # production scheduling: poll 1 s, lease 120 s
    env.pop("RUN_LEASE_SECONDS", None)
    env.update({"WORKER_GRACE_SECONDS": "20", "LOG_LEVEL": "INFO"})
    return env


def _cluster_memory(cluster: LocalCluster) -> int:
    import redis as redis_sync

    total = 0
    for port in cluster.ports:
        client = redis_sync.Redis(host="127.0.0.1", port=port)
        try:
            total += int(client.info("memory")["used_memory"])
        finally:
            client.close()
    return total


async def _fill(store: Store, n: int) -> list[str]:
    """n active connections on the 10-minute plan, each due an hour from now (parked)."""
    now = datetime.now(UTC)
    parked = now + timedelta(seconds=PARKED)
    ids = [f"size-{i:06d}" for i in range(n)]

    async def one(cid: str) -> None:
        await store.create_connection(
            Connection(
                id=cid,
                name=f"Org {cid}",
                teams_tenant_id="bench",
                conversation_key=f"msteams:conversation-{cid}",
                created_by_aad_id="bench",
                xero_tenant_id=f"xt-{cid}",
                plan="standard",
                created_at=now,
                updated_at=now,
            )
        )
        await store.schedule(cid, parked)

    for start in range(0, n, 40):  # the store's pool holds 50 connections
        await asyncio.gather(*(one(cid) for cid in ids[start : start + 40]))
    return ids


async def _size(h: Harness, cluster: LocalCluster, n: int, setup: Setup, tmp: Path) -> dict[str, Any]:
    env = _env(h)
    before = _cluster_memory(cluster)
    began = time.monotonic()
    log(f"   {n:,} connections: making them")
    ids = await _fill(h.store, n)
    out: dict[str, Any] = {"connections": n, "fill_s": time.monotonic() - began}
    out["redis_bytes_per_connection"] = (_cluster_memory(cluster) - before) / n
    # The fleet's reconcile was done by an earlier worker (one an hour holds the lock).
    await h.store.acquire_lock(RECONCILE_LOCK, "bench:an-earlier-worker", 3600.0)
    bot_env = {**env, "RUN_SCHEDULER": "false", "SIGNIN_KEEPER_ENABLED": "false"}
    bot = await Child.start("bench.bot_server", bot_env, ["product"])
    try:
        out["idle"] = await _idle(bot, env, setup, tmp, f"idle{n}")
        order = ids[:]  # due in turn: each phase takes the next ones
        taken = 0
        phases = []
        for k in setup.workers:
            rate = n / INTERVAL
            count = int(rate * setup.observe)
            phases.append(
                await _phase(h, cluster, bot, order[taken : taken + count], k, rate, env, tmp, f"{n}-{k}")
            )
            taken += count
        out["phases"] = phases
        out["bot_rss_end_mib"] = mib(process_memory(bot.proc.pid).get("rss", 0))
        out["bot_peak_rss_mib"] = mib(process_memory(bot.proc.pid).get("peak_rss", 0))
    finally:
        await bot.close()
    log(
        f"   {n:,}: bot idle {out['idle']['bot_cpu_ms_per_s']:.1f} ms/s, {out['idle']['bot_rss_mib']:.0f} MiB; "
        f"idle worker {out['idle']['worker_cpu_ms_per_s']:.1f} ms/s, {out['idle']['worker_rss_mib']:.0f} MiB"
    )
    return out


async def _idle(bot: Child, env: dict[str, str], setup: Setup, tmp: Path, tag: str) -> dict[str, Any]:
    workers, ready = await start_workers(1, env, tmp, tag, STANDIN)
    await asyncio.sleep(2.0)  # past start-up
    pids = {"bot": bot.proc.pid, "worker": workers[0].proc.pid}
    start = {k: process_cpu_seconds(p) for k, p in pids.items()}
    t0 = time.monotonic()
    await asyncio.sleep(setup.idle)
    seconds = time.monotonic() - t0
    used = {k: process_cpu_seconds(p) - start[k] for k, p in pids.items()}
    memory = {k: process_memory(p) for k, p in pids.items()}
    await stop_workers(workers)
    return {
        "seconds": seconds,
        "worker_ready_s": ready,
        "bot_cpu_ms_per_s": 1000 * used["bot"] / seconds,
        "bot_rss_mib": mib(memory["bot"].get("rss", 0)),
        "worker_cpu_ms_per_s": 1000 * used["worker"] / seconds,
        "worker_rss_mib": mib(memory["worker"].get("rss", 0)),
        "worker_peak_rss_mib": mib(memory["worker"].get("peak_rss", 0)),
    }


async def _phase(
    h: Harness,
    cluster: LocalCluster,
    bot: Child,
    ids: list[str],
    k: int,
    rate: float,
    env: dict[str, str],
    tmp: Path,
    tag: str,
) -> dict[str, Any]:
    log(f"   {k} workers: {len(ids):,} runs due at {rate:.1f}/s")
    workers, ready = await start_workers(k, env, tmp, tag, STANDIN)
    t0 = time.time() + 2.0
    dues = {cid: t0 + i / rate for i, cid in enumerate(ids)}
    await schedule_dues(h.store, dues)
    # Until the last run due is 30 s late: a run not started by then missed its budget (skipped).
    end = max(dues.values()) + START_BUDGET
    bot_cpu = process_cpu_seconds(bot.proc.pid)
    worker_cpu = [process_cpu_seconds(w.proc.pid) for w in workers]
    redis_cpu = sum(process_cpu_seconds(p.pid) for p in cluster.procs)
    while time.time() < end:
        for w in workers:
            w.sample()
        await asyncio.sleep(1.0)
    bot_used = process_cpu_seconds(bot.proc.pid) - bot_cpu
    workers_used = [process_cpu_seconds(w.proc.pid) - c for w, c in zip(workers, worker_cpu, strict=True)]
    redis_used = sum(process_cpu_seconds(p.pid) for p in cluster.procs) - redis_cpu
    await stop_workers(workers)
    # What did not run by the end goes back to the parking lot, out of the next phase's way.
    runs = await runs_since(h.store, dues, since=t0 - 1)
    await schedule_dues(h.store, {c: time.time() + PARKED for c, r in runs.items() if r["count"] == 0})
    started = [r for r in runs.values() if r["count"] >= 1]
    delays = [r["delay"] for r in started]
    n_started = len(started)
    return {
        "workers": k,
        "rate": rate,
        "runs_due": len(dues),
        "started": n_started,
        "twice": sum(1 for r in runs.values() if r["count"] > 1),
        "skipped": sum(1 for r in runs.values() if r["count"] == 0),
        "lag_s": {q: percentile(delays, v) for q, v in (("p50", 50), ("p99", 99))}
        | {"max": max(delays) if delays else math.nan},
        "late": sum(1 for d in delays if d > START_BUDGET),
        "workers_ready_s": ready,
        "bot_cpu_ms_per_run": 1000 * bot_used / n_started if n_started else math.nan,
        "workers_cpu_ms_per_run": 1000 * sum(workers_used) / n_started if n_started else math.nan,
        "redis_cpu_ms_per_run": 1000 * redis_used / n_started if n_started else math.nan,
        "worker_peak_rss_mib": max(w.summary()["peak_rss_mib"] for w in workers),
        "errors_logged": sum(w.summary()["errors_logged"] for w in workers),
    }


def _within(small: float, large: float, floor: float = 0.0) -> bool:
    """`large` at most 20% above `small`; or, for figures near zero (an idle process's CPU is a few
    clock ticks in the window), at most `floor` above it."""
    return large <= max(small * (1 + WITHIN), small + floor)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    small, large = result["sizes"][0], result["sizes"][-1]
    a, b = small["idle"], large["idle"]
    sizes = f"{small['connections']:,} -> {large['connections']:,}"
    out = [
        {
            "target": f"the bot's CPU and memory, idle, within 20% from {sizes} connections",
            "measured": f"{a['bot_cpu_ms_per_s']:.1f} -> {b['bot_cpu_ms_per_s']:.1f} ms of CPU a second, "
            f"{a['bot_rss_mib']:.0f} -> {b['bot_rss_mib']:.0f} MiB",
            "met": _within(a["bot_cpu_ms_per_s"], b["bot_cpu_ms_per_s"], CPU_FLOOR)
            and _within(a["bot_rss_mib"], b["bot_rss_mib"]),
        },
        {
            "target": f"an idle worker's CPU and memory within 20% from {sizes} connections",
            "measured": f"{a['worker_cpu_ms_per_s']:.1f} -> {b['worker_cpu_ms_per_s']:.1f} ms of CPU a second, "
            f"{a['worker_rss_mib']:.0f} -> {b['worker_rss_mib']:.0f} MiB",
            "met": _within(a["worker_cpu_ms_per_s"], b["worker_cpu_ms_per_s"], CPU_FLOOR)
            and _within(a["worker_rss_mib"], b["worker_rss_mib"]),
        },
    ]
    for size in result["sizes"]:
        for p in size["phases"]:
            out.append(
                {
                    "target": f"{size['connections']:,} connections, {p['workers']} workers, {p['rate']:.1f} runs/s "
                    "due: lag p99 <= 30 s, none twice, none skipped",
                    "measured": f"lag p50 {p['lag_s']['p50']:.2f} s, p99 {p['lag_s']['p99']:.2f} s; "
                    f"{p['started']:,}/{p['runs_due']:,} started, {p['twice']} twice, {p['skipped']} skipped",
                    "met": p["lag_s"]["p99"] <= START_BUDGET and p["twice"] == 0 and p["skipped"] == 0,
                }
            )
    return out


def render(result: dict[str, Any]) -> str:
    rows = []
    for size in result["sizes"]:
        i = size["idle"]
        rows.append(
            (
                f"{size['connections']:,}",
                f"{size['redis_bytes_per_connection']:.0f}",
                f"{i['bot_cpu_ms_per_s']:.1f}",
                f"{i['bot_rss_mib']:.0f}",
                f"{i['worker_cpu_ms_per_s']:.1f}",
                f"{i['worker_rss_mib']:.0f}",
                f"{i['worker_ready_s']:.1f}",
                f"{size['bot_rss_end_mib']:.0f}",
            )
        )
    head = table(
        [
            "Connections",
            "Redis B/conn",
            "Bot idle CPU ms/s",
            "Bot idle RSS MiB",
            "Idle worker CPU ms/s",
            "Idle worker RSS MiB",
            "Worker ready s",
            "Bot RSS after runs MiB",
        ],
        rows,
    )
    phase_rows = [
        (
            f"{size['connections']:,}",
            p["workers"],
            f"{p['rate']:.1f}",
            f"{p['started']:,}/{p['runs_due']:,}",
            p["twice"],
            p["skipped"],
            f"{p['lag_s']['p50']:.2f}",
            f"{p['lag_s']['p99']:.2f}",
            f"{p['lag_s']['max']:.2f}",
            f"{p['bot_cpu_ms_per_run']:.2f}",
            f"{p['workers_cpu_ms_per_run']:.2f}",
            f"{p['redis_cpu_ms_per_run']:.2f}",
        )
        for size in result["sizes"]
        for p in size["phases"]
    ]
    runs = table(
        [
            "Connections",
            "Workers",
            "Due/s",
            "Started",
            "Twice",
            "Skipped",
            "Lag p50 s",
            "p99 s",
            "max s",
            "Bot CPU ms/run",
            "Workers CPU ms/run",
            "Redis CPU ms/run",
        ],
        phase_rows,
    )
    return head + "\n\n" + runs


__all__ = ["FULL", "QUICK", "Setup", "Worker", "render", "run"]
