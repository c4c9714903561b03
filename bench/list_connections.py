"""`python -m bench.list_connections [N ...]`: how long one `Store.list_connections()` takes with N
connections, on the embedded SQLite store and on Redis (a throwaway `redis-server` on port 6399).

A settings Save that renames a connection or moves the default, the Xero step of a setup and a disconnect
each read every connection once (bench/README.md, "Scale"): this is what that read costs. Best of 3.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bot.storage.base import Store
from bot.storage.redis import RedisStore
from bot.storage.sqlite import SqliteStore
from tests.contract.records import make_connection

REDIS_PORT = 6399


async def _fill(store: Store, n: int) -> None:
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        async with gate:
            await store.create_connection(make_connection(f"c{i}", conversation=f"msteams:19:{i % 500}"))

    await asyncio.gather(*(one(i) for i in range(n)))


async def _best_of_3(store: Store) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        await store.list_connections()
        best = min(best, time.perf_counter() - start)
    return best


async def measure(sizes: list[int]) -> list[tuple[str, int, float]]:
    results: list[tuple[str, int, float]] = []
    server = None
    if shutil.which("redis-server"):
        server = subprocess.Popen(
            ["redis-server", "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        await asyncio.sleep(0.5)
    try:
        for n in sizes:
            with tempfile.TemporaryDirectory() as scratch:
                sqlite = await SqliteStore.open(Path(scratch) / "bench.db")
                await _fill(sqlite, n)
                results.append(("sqlite", n, await _best_of_3(sqlite)))
                await sqlite.close()
            if server is not None:
                redis = await RedisStore.open(f"redis://127.0.0.1:{REDIS_PORT}/0", prefix=f"bench{n}:")
                await _fill(redis, n)
                results.append(("redis", n, await _best_of_3(redis)))
                await redis.close()
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.list_connections", description=__doc__)
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000], help="connection counts")
    args = parser.parse_args(argv)
    print("| Store  | Connections | list_connections() s |")
    print("|--------|-------------|----------------------|")
    for store, n, seconds in asyncio.run(measure(args.sizes)):
        print(f"| {store:<6} | {n:>11,} | {seconds:>20.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
