"""What every part of the benchmark shares: statistics, the machine's description, a redis-server,
a child process speaking JSON lines, and the table printer.

Figures that compare two things are always ratios of numbers measured side by side in one run, and
every figure that is repeated is a median over its repeats (the machines are shared and noisy).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else math.nan


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank on the sorted values (no interpolation past the data)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def ratio(a: float, b: float) -> float:
    return a / b if b else math.inf


def rounded(value: Any, digits: int = 3) -> Any:
    """Floats rounded for results.json (inf and nan become strings, which JSON can carry)."""
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


# ---- the machine ----------------------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return math.nan


def machine() -> dict[str, Any]:
    """What the numbers were measured on (README.md quotes it)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


# ---- redis ----------------------------------------------------------------------------------------


@dataclass
class Redis:
    url: str
    port: int
    pid: int


@contextlib.contextmanager
def redis_server() -> Iterator[Redis]:
    """A redis-server of our own on a free port (as the test suite starts one), stopped at the end."""
    from tests.conftest import _start_redis, free_port

    if not shutil.which("redis-server"):
        raise RuntimeError("redis-server is not installed (make test installs it where it can)")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as directory:
        port = free_port()
        proc = _start_redis(port, Path(directory))
        try:
            yield Redis(f"redis://127.0.0.1:{port}/0", port, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except Exception:
                proc.kill()
                proc.wait(5)


def redis_used_memory(url: str) -> int:
    import redis as redis_sync

    client = redis_sync.Redis.from_url(url)
    try:
        info = client.info("memory")
        return int(info["used_memory"])
    finally:
        client.close()


def flush_redis(url: str) -> None:
    import redis as redis_sync

    client = redis_sync.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# ---- process memory -------------------------------------------------------------------------------


def process_memory(pid: int) -> dict[str, int]:
    """Resident set size now and at its peak (VmRSS, VmHWM), in bytes; {} if the process is gone."""
    found: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found["rss" if name == "VmRSS" else "peak_rss"] = int(value.split()[0]) * 1024
    return found


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (nan if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    # After the command name: state is field 3; utime and stime are fields 14 and 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat (every process, ours or not)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return math.nan, math.nan
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


def busy_between(start: tuple[float, float], end: tuple[float, float]) -> float:
    """The fraction of the machine's CPU that was busy between two `machine_cpu()` readings."""
    total = end[1] - start[1]
    return (end[0] - start[0]) / total if total > 0 else math.nan


# ---- a child process speaking JSON lines ----------------------------------------------------------


class Child:
    """`python -m <module>` with a JSON request per line on stdin and a JSON answer per line on stdout.

    The measured code runs there, apart from the sandboxes, so its wall time is not the sandboxes'
    CPU and its memory is its own (the sandboxes stand in for services on other machines)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.info: dict[str, Any] = {}  # what the child said when it was ready

    @classmethod
    async def start(cls, module: str, env: dict[str, str], args: Sequence[str] = ()) -> Child:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            cwd=str(ROOT),
            env={**os.environ, **env, "PYTHONPATH": python_path()},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=16 * 1024 * 1024,
        )
        child = cls(proc)
        ready = await child._read()
        if ready.get("ready") is not True:
            raise RuntimeError(f"{module} did not start: {ready}")
        child.info = ready
        return child

    async def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            code = await self.proc.wait()
            raise RuntimeError(f"the child process ended (exit status {code})")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise RuntimeError(f"the child answered {answer!r}")
        if "error" in answer:
            raise RuntimeError(f"the child failed: {answer['error']}")
        return answer

    async def ask(self, **request: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        await self.proc.stdin.drain()
        return await self._read()

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await self.ask(op="quit")
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


def python_path() -> str:
    """PYTHONPATH for a child: the checkout first (bench and tests are not installed packages)."""
    return os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


@contextlib.asynccontextmanager
async def child(module: str, env: dict[str, str], args: Sequence[str] = ()) -> AsyncIterator[Child]:
    started = await Child.start(module, env, args)
    try:
        yield started
    finally:
        await started.close()


async def serve_child(handlers: dict[str, Any], **ready: Any) -> None:
    """The child's side of `Child`: answer each request line with `handlers[op](**request)`.
    `ready` is sent with the first line (a port, a pid)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=16 * 1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout

    def say(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, default=str) + "\n")
        out.flush()

    say({**ready, "ready": True})
    while line := await reader.readline():
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            say({"bye": True})
            return
        try:
            say(await handlers[op](**request))
        except Exception as exc:  # the parent shows it; the child stays up for the next request
            import traceback

            say({"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"})


# ---- output -------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (it reads well in a terminal too)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]
    return "\n".join([line, rule, *body])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value)


def mib(n: float) -> float:
    return n / 1024 / 1024


def log(message: str) -> None:
    """Progress on stderr (the tables go to stdout)."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
