"""The integration tests' harness (tests/integration/harness.py) as the fixture `h`: the sandboxes, the
store and the sync runtime, composed as the bot and the worker compose them. A module that needs another
composition (Redis, other limits) defines its own `h`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.harness import Harness, open_harness


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    async with open_harness(tmp_path) as harness:
        yield harness
