"""The measured side of the sync-cost benchmark, in a process of its own (see bench.sync_cost).

Started with the environment a worker gets (`Harness.settings_env()`), it builds the store and the sync
runtime exactly as `python -m bot.worker` does, then answers JSON requests on stdin:

    {"op": "run", "connection_id": ..., "trace": false}     one SyncEngine run
    {"op": "naive", "connection_id": ..., "concurrency": 50, "trace": false}
    {"op": "quit"}

Each answer carries the wall time and what the run reports; with `trace` the run is watched by
tracemalloc (slower, so those runs are used for memory only) and the answer has `peak_bytes`: the
highest Python heap the run added on top of what was allocated when it started.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bench.common import serve_child
from bench.naive import naive_run
from bot.config import load_settings
from bot.storage.factory import open_store
from bot.sync.ports import NullNotifier
from bot.sync.runtime import SyncRuntime, open_sync_runtime
from cards.failure_words import connector_outcome_words

T = TypeVar("T")


async def measured(call: Callable[[], Awaitable[T]], trace: bool) -> tuple[T, float, int]:
    gc.collect()
    if trace:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    started = time.perf_counter()
    result = await call()
    wall = time.perf_counter() - started
    peak = 0
    if trace:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    return result, wall, peak


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    settings = load_settings()
    store = await open_store(settings)
    try:
        async with open_sync_runtime(
            settings, store, NullNotifier(), outcome_words=connector_outcome_words
        ) as runtime:
            await serve_child(
                {"run": lambda **kw: run(runtime, **kw), "naive": lambda **kw: naive(runtime, **kw)}
            )
    finally:
        await store.close()


async def run(runtime: SyncRuntime, connection_id: str, trace: bool = False) -> dict[str, Any]:
    record, wall, peak = await measured(lambda: runtime.engine.run(connection_id, "schedule"), trace)
    return {
        "wall": wall,
        "peak_bytes": peak,
        "outcome": record.outcome.value,
        "run_error": record.error,
        "full_pass": record.full_pass,
        "xero_calls": record.xero_calls,
        "dataverse_calls": record.dataverse_calls,
        "changed": {k: c.changed for k, c in record.counts.items()},
        "failed": sum(c.failed for c in record.counts.values()),
    }


async def naive(
    runtime: SyncRuntime, connection_id: str, concurrency: int, trace: bool = False
) -> dict[str, Any]:
    connection = await runtime.store.get_connection(connection_id)
    if connection is None:
        raise LookupError(f"no connection {connection_id}")
    report, wall, peak = await measured(
        lambda: naive_run(runtime, connection, concurrency=concurrency), trace
    )
    return {
        "wall": wall,
        "peak_bytes": peak,
        "xero_calls": report.xero_calls,
        "dataverse_calls": report.dataverse_calls,
        "records": report.records,
        "failed": report.failed,
    }


if __name__ == "__main__":
    asyncio.run(main())
