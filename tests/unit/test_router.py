"""The router's table: one handler per command, verb and invoke verb; overrides only when asked for."""

from __future__ import annotations

from typing import Any

import pytest

from bot.commands import COMMANDS_BY_NAME
from bot.teams.router import DuplicateRoute, Router
from bot.teams.turn import Turn


async def _command(turn: Turn, args: list[str]) -> None:
    return None


async def _other_command(turn: Turn, args: list[str]) -> None:
    return None


async def _submit(turn: Turn, value: dict[str, Any]) -> None:
    return None


async def _invoke(turn: Turn, value: dict[str, Any]) -> dict[str, Any] | None:
    return None


def test_a_second_command_handler_is_refused() -> None:
    router = Router()
    router.on_command("connect", _command)
    with pytest.raises(DuplicateRoute, match="connect"):
        router.on_command("connect", _other_command)
    assert router.commands == {"connect"}


def test_a_second_verb_handler_is_refused() -> None:
    router = Router()
    router.on_verb("run_now", _submit)
    with pytest.raises(DuplicateRoute, match="run_now"):
        router.on_verb("run_now", _submit)
    assert router.verbs == {"run_now"}
    router.on_invoke_verb("run_now", _invoke)  # invokes are a table of their own
    with pytest.raises(DuplicateRoute):
        router.on_invoke_verb("run_now", _invoke)


def test_an_explicit_override_replaces_only_what_is_there() -> None:
    router = Router()
    with pytest.raises(DuplicateRoute, match="nothing to replace"):
        router.on_verb("settings_submit", _submit, replace=True)
    with pytest.raises(DuplicateRoute, match="nothing to replace"):
        router.on_command("status", _command, replace=True)
    router.on_command("status", _command)
    router.on_command("status", _other_command, replace=True)
    assert router._commands["status"] is _other_command


def test_only_commands_of_the_table_are_routed() -> None:
    router = Router()
    with pytest.raises(ValueError, match="command table"):
        router.on_command("launch", _command)
    # `cancel` is in the table (bot.commands.CANCEL): parse_command matches it, so no special case.
    assert "cancel" in COMMANDS_BY_NAME
    router.on_command("cancel", _command)
    assert "cancel" in router.commands
