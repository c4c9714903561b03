"""A worker's small HTTP listener: GET /metrics (Prometheus text format), /readyz (its schedule lag), /healthz.

Off unless WORKER_METRICS_PORT is set. Written on asyncio's streams rather than a web framework: the sync
core does not import aiohttp's server (import-linter), three read-only GET routes need no more, and it
answers from the worker's own event loop, so /readyz sees the scheduler as it is. One request per
connection (`Connection: close`), bounded reads with a timeout: a scraper or a probe, nothing else.

/readyz answers 200 while the scheduler's loop runs and came round recently (within `stale_after`
seconds, a few poll intervals), else 503; its JSON says how late the latest scheduled run it claimed
was (`schedule_lag_seconds`), how long ago it last polled, and its runs in flight against its
concurrency (a worker at its concurrency claims nothing more, so lag then grows unseen by it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot import metrics
from bot.config import Settings

log = logging.getLogger(__name__)

READ_TIMEOUT = 5.0
MAX_HEADER_LINES = 100
MAX_LINE = 8192
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


@dataclass
class WorkerHttp:
    """A running listener; `port` is the one it bound (useful with port 0: any free port)."""

    server: asyncio.Server | None
    port: int

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def start_listener(
    settings: Settings, running: Callable[[], bool], poll_seconds: float | None = None
) -> WorkerHttp:
    """The listener of WORKER_METRICS_PORT, or none (a no-op `close`) when it is 0."""
    if not settings.worker_metrics_port:
        return WorkerHttp(None, 0)
    return await serve(
        settings.worker_metrics_host,
        settings.worker_metrics_port,
        running,
        poll_seconds if poll_seconds is not None else settings.scheduler_poll_seconds,
    )


async def serve(host: str, port: int, running: Callable[[], bool], poll_seconds: float) -> WorkerHttp:
    # A slow run does not stop the loop from polling; a loop that has not come round for this long has.
    stale_after = max(10.0, 5 * poll_seconds)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, content_type, body = await _answer(reader, running, stale_after)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            status, content_type, body = 400, "text/plain; charset=utf-8", b"bad request\n"
        except ConnectionError:
            writer.close()
            return
        head = (
            f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()

    server = await asyncio.start_server(handle, host, port, limit=MAX_LINE)
    bound = server.sockets[0].getsockname()[1]
    log.info("worker metrics on http://%s:%d/metrics (and /readyz)", host, bound)
    return WorkerHttp(server, int(bound))


async def _answer(
    reader: asyncio.StreamReader, running: Callable[[], bool], stale_after: float
) -> tuple[int, str, bytes]:
    request_line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
    parts = request_line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request line")
    accept = ""
    for _ in range(MAX_HEADER_LINES):
        line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "accept":
            accept = value.strip()
    else:
        raise ValueError("too many header lines")
    method, target = parts[0], parts[1].split("?", 1)[0]
    if target not in ("/metrics", "/readyz", "/healthz"):
        return 404, "text/plain; charset=utf-8", b"not found\n"
    if method != "GET":
        return 405, "text/plain; charset=utf-8", b"method not allowed\n"
    if target == "/metrics":
        body, content_type = metrics.render(accept)
        return 200, content_type, body
    if target == "/healthz":
        return 200, "application/json", b'{"status": "alive"}'
    return _readiness(running(), stale_after)


def _readiness(running: bool, stale_after: float) -> tuple[int, str, bytes]:
    view = metrics.SCHEDULE
    age = None if view.last_poll_monotonic is None else time.monotonic() - view.last_poll_monotonic
    ready = running and age is not None and age <= stale_after
    body = {
        "ready": ready,
        "scheduler": "running" if running else "stopped",
        "schedule_lag_seconds": round(view.last_lag_seconds, 3),
        "last_poll_seconds_ago": None if age is None else round(age, 3),
        "runs_in_flight": view.in_flight,
        "concurrency": view.concurrency,
        "claimed": view.claimed,
    }
    return (200 if ready else 503), "application/json", json.dumps(body).encode()
