"""The store contract runs against three backends: SQLite on a temporary file, a real redis-server,
and a local three-node Redis Cluster (`tests.contract.cluster`, started once per session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.storage.base import Store
from tests.contract.backends import Backend
from tests.contract.cluster import LocalCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if not LocalCluster.available():
        pytest.skip("redis-server and redis-cli are not installed")
    cluster = LocalCluster.start(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: LocalCluster) -> str:
    """The cluster, emptied for one test."""
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", path=tmp_path / "data" / "connector.db")
    elif request.param == "redis":
        chosen = Backend("redis", url=request.getfixturevalue("redis_url"))
    else:
        chosen = Backend("cluster", url=request.getfixturevalue("redis_cluster_url"))
    yield chosen
    await chosen.close_all()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
