"""The worker process's loop (its entry point is `python -m bot.worker`, which passes the words): a process
that only runs syncs (any number of them on one Redis).

`serve` opens the store, builds the sync runtime and runs a Scheduler until SIGTERM or
SIGINT, then stops claiming, lets the runs under way finish (up to WORKER_GRACE_SECONDS, default 25,
inside a typical 30 s termination grace) and releases their leases. A worker killed outright leaves
its leases to expire; another worker then picks those connections up.

Workers tell nobody in Teams themselves (their notifier is a NullNotifier): every run's report is in
the store (`Store.list_runs`), and the bot process posts the cards for runs it did not execute.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import Callable

from bot.config import Settings
from bot.errors import ConfigError
from bot.storage.base import Store
from bot.storage.factory import open_store
from bot.sync.ports import NullNotifier, OutcomeWords
from bot.sync.records import outcome_data
from bot.sync.runtime import open_sync_runtime
from bot.sync.scheduler import Runner, Scheduler
from bot.sync.worker_http import start_listener

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 25.0
# Runs in flight per worker. A run mostly waits on Xero and Dynamics (about 0.7 s), so 8 bounded a worker
# by latency (about 11 runs a second); with 32 it starts 20 to 38 a second on the benchmark machine
# (bench/README.md, part 3): two workers carry 2.4x to 4.5x what 10,000 connections on the 10-minute
# plan need.
DEFAULT_CONCURRENCY = 32


def worker_id() -> str:
    """Unique per process (leases name their owner with it)."""
    return f"worker:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}: must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name}: must be greater than 0")
    return value


async def serve(
    settings: Settings,
    stop: asyncio.Event | None = None,
    *,
    runner: Callable[[Store], Runner] | None = None,
    outcome_words: OutcomeWords = outcome_data,
) -> None:
    """Run a scheduler until `stop` is set (or SIGTERM/SIGINT arrives). `runner` replaces the sync
    engine (the scale benchmark's stand-in runs); everything else is the worker as shipped."""
    grace = _env_number("WORKER_GRACE_SECONDS", DEFAULT_GRACE_SECONDS)
    concurrency = int(_env_number("WORKER_CONCURRENCY", DEFAULT_CONCURRENCY))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    store = await open_store(settings)
    try:
        async with open_sync_runtime(settings, store, NullNotifier(), outcome_words=outcome_words) as runtime:
            scheduler = Scheduler(
                store,
                runner(store) if runner is not None else runtime.engine,
                owner=worker_id(),
                poll_seconds=settings.scheduler_poll_seconds,
                lease_seconds=settings.run_lease_seconds,
                concurrency=concurrency,
            )
            await scheduler.start()
            listener = await start_listener(settings, lambda: scheduler.running)  # WORKER_METRICS_PORT
            log.info("worker %s running (concurrency %d)", scheduler.owner, concurrency)
            await stop.wait()
            log.info("worker %s stopping: finishing runs under way (up to %.0f s)", scheduler.owner, grace)
            await scheduler.stop(grace_seconds=grace)
            await listener.close()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await store.close()
    log.info("worker stopped")


if __name__ == "__main__":
    # The entry point moved to `python -m bot.worker` (the worker's composition root): a deployment still
    # starting this module must fail loudly, not exit 0 and run nothing.
    sys.stderr.write("bot.sync.worker is no longer an entry point: start workers with `python -m bot.worker`\n")
    raise SystemExit(2)
