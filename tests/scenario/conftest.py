"""Scenario fixtures: the bot with its sandboxes and a fake Bot Connector (see botharness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.scenario.botharness import BotHarness, open_bot


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    """The bot on the SQLite store, scheduler loop off (runs are scheduled, not run)."""
    async with open_bot(tmp_path) as harness:
        yield harness
