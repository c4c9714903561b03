"""A local three-node Redis Cluster for the contract suite (and anyone else who needs one).

Three `redis-server --cluster-enabled yes` processes on free ports (each also needs its cluster bus
port, the data port + 10000), joined by `redis-cli --cluster create ... --cluster-replicas 0
--cluster-yes`, which spreads the 16,384 hash slots over the three primaries. Ready once every node
reports `cluster_state:ok`. Nothing is persisted: the nodes run with no RDB or AOF in a temporary
directory.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

NODES = 3
BUS_OFFSET = 10000  # Redis Cluster's bus listens on the data port + 10000


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (+10000) is free as well."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + BUS_OFFSET < 65536 and port not in taken and _bindable(port + BUS_OFFSET):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def _wait_listening(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server on port {port} did not start")


class LocalCluster:
    """Start with `LocalCluster.start(directory)`, stop with `stop()`. `url` is the store's
    `redis+cluster://` URL (one seed node: the client discovers the others)."""

    def __init__(self, ports: list[int], procs: list[subprocess.Popen[bytes]]) -> None:
        self.ports = ports
        self.procs = procs

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    @classmethod
    def available(cls) -> bool:
        return bool(shutil.which("redis-server") and shutil.which("redis-cli"))

    @classmethod
    def start(cls, directory: Path, timeout: float = 20.0) -> LocalCluster:
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        assert server
        assert cli
        ports: list[int] = []
        for _ in range(NODES):
            ports.append(_free_cluster_port(set(ports)))
        procs: list[subprocess.Popen[bytes]] = []
        cluster = cls(ports, procs)
        try:
            for port in ports:
                node_dir = directory / str(port)
                node_dir.mkdir(parents=True, exist_ok=True)
                procs.append(
                    subprocess.Popen(
                        [
                            server,
                            "--port",
                            str(port),
                            "--bind",
                            "127.0.0.1",
                            "--dir",
                            str(node_dir),
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            "nodes.conf",
                            "--cluster-node-timeout",
                            "5000",
                            "--save",
                            "",
                            "--appendonly",
                            "no",
                            "--protected-mode",
                            "no",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
            deadline = time.monotonic() + timeout
            for port in ports:
                _wait_listening(port, deadline)
            subprocess.run(
                [
                    cli,
                    "--cluster",
                    "create",
                    *[f"127.0.0.1:{p}" for p in ports],
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=timeout,
            )
            cluster._wait_ok(cli, deadline)
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _wait_ok(self, cli: str, deadline: float) -> None:
        pending = list(self.ports)
        while pending and time.monotonic() < deadline:
            info = subprocess.run(
                [cli, "-p", str(pending[0]), "cluster", "info"], capture_output=True, text=True, timeout=5
            ).stdout
            if "cluster_state:ok" in info:
                pending.pop(0)
            else:
                time.sleep(0.05)
        if pending:
            raise RuntimeError("the Redis Cluster did not reach cluster_state:ok")

    def flush(self) -> None:
        """Empty every node (between tests)."""
        import redis as redis_sync

        for port in self.ports:
            client = redis_sync.Redis(host="127.0.0.1", port=port)
            try:
                client.flushall()
            finally:
                client.close()

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
