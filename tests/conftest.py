"""Shared fixtures: a real redis-server on a free port, free ports, temporary data dirs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, url: str, proc: subprocess.Popen[bytes] | None, port: int | None) -> None:
        self.url = url
        self.proc = proc
        self.port = port

    def restart(self) -> None:
        """Stop and start the server on the same port (its data is kept: it is saved on shutdown)."""
        if self.proc is None:
            pytest.skip("REDIS_URL points at a server these tests did not start")
        self.proc.terminate()
        self.proc.wait(10)
        self.proc = _start_redis(self.port or free_port(), self._dir)

    _dir: Path


def _start_redis(port: int, directory: Path) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
         "--save", "", "--appendonly", "yes", "--protected-mode", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server: REDIS_URL if given, else one started here on a free port."""
    if os.environ.get("REDIS_URL"):
        yield RedisServer(os.environ["REDIS_URL"], None, None)
        return
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed (make test installs it where it can)")
    directory = tmp_path_factory.mktemp("redis")
    port = free_port()
    proc = _start_redis(port, directory)
    server = RedisServer(f"redis://127.0.0.1:{port}/0", proc, port)
    server._dir = directory
    yield server
    if server.proc is not None:
        server.proc.terminate()
        server.proc.wait(10)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A clean Redis database for one test."""
    import redis as redis_sync

    client = redis_sync.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url
