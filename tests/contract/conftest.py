"""The store contract runs against both backends: SQLite on a temporary file and a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.storage.base import Store
from tests.contract.backends import Backend


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", path=tmp_path / "data" / "connector.db")
    else:
        chosen = Backend("redis", url=request.getfixturevalue("redis_url"))
    yield chosen
    await chosen.close_all()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
