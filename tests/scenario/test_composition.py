"""The scenario bot is the shipped bot: `open_bot` serves what `bot.teams.app.open_bot_app` built, with
the test seams applied, and nothing assembled beside it."""

from __future__ import annotations

from pathlib import Path

from bot.teams.app import AppSeams
from tests.scenario.botharness import BotHarness, open_bot


def _served_by_the_app(bot: BotHarness) -> None:
    app = bot.app
    assert (bot.router, bot.bot, bot.setup, bot.scheduler, bot.runtime) == (
        app.router,
        app.bot,
        app.setup,
        app.scheduler,
        app.runtime,
    )
    # The operations commands and the setup's are on one router, whether or not a test reads `ops(bot)`.
    assert {"connect", "cancel", "status", "now", "disconnect"} <= bot.router.commands


async def test_the_harness_bot_is_open_bot_app_with_the_test_seams(bot: BotHarness) -> None:
    _served_by_the_app(bot)
    assert bot.runtime.engine.clock is bot.sandboxes.clock
    assert bot.app.seams.start_watcher is False


async def test_use_app_passes_no_seams(tmp_path: Path) -> None:
    async with open_bot(tmp_path, use_app=True) as bot:
        _served_by_the_app(bot)
        assert bot.runtime.engine.clock is not bot.sandboxes.clock
        assert bot.app.seams == AppSeams()
        assert bot.notifier.target is bot.app.notifier
