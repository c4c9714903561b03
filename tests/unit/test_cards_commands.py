"""The command table and its parser (bot/commands.py)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.commands import CANCEL, COMMANDS, COMMANDS_BY_NAME, Command, ParsedCommand, help_lines, parse_command

EXPECTED = {
    "connect", "status", "now", "history", "preview", "why", "settings", "pause", "resume", "disconnect", "help"
}


def test_table_has_the_commands_once_each() -> None:
    names = [c.name for c in COMMANDS]
    assert set(names) == EXPECTED
    assert len(names) == len(set(names))
    assert CANCEL.name == "cancel"
    assert CANCEL not in COMMANDS


@pytest.mark.parametrize("command", [*COMMANDS, CANCEL], ids=lambda c: c.name)
def test_each_command_is_well_formed(command: Command) -> None:
    assert command.name == command.name.lower()
    assert " " not in command.name
    assert command.usage.startswith(command.name)
    assert ("[name]" in command.usage) == command.takes_name
    assert 0 < len(command.description) <= 128
    assert "\n" not in command.description


def test_command_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        COMMANDS[0].name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "name", "args"),
    [
        ("/sync status", "status", []),
        ("sync status", "status", []),
        ("status", "status", []),
        ("/status", "status", []),
        ("SYNC Status Foo", "status", ["Foo"]),
        ("  sync   history   Acme   Ltd ", "history", ["Acme", "Ltd"]),
        ("Now", "now", []),
        ("/SYNC now Acme", "now", ["Acme"]),
        ("sync /settings", "settings", []),
        ("/ sync pause", "pause", []),
        ("resume\u00a0Acme", "resume", ["Acme"]),
        ("disconnect acme", "disconnect", ["acme"]),
        ("connect", "connect", []),
        ("help", "help", []),
        ("cancel", "cancel", []),
        ("sync cancel", "cancel", []),
        ("HELP me", "help", ["me"]),
    ],
)
def test_parse_recognises(text: str, name: str, args: list[str]) -> None:
    parsed = parse_command(text)
    assert parsed.command is not None
    assert parsed.command.name == name
    assert parsed.args == args
    assert parsed.raw == text


@pytest.mark.parametrize(
    "text", ["", "   ", "/", "sync", "/sync", "hello there", "statuses", "sync sync status"]
)
def test_parse_unknown_or_empty(text: str) -> None:
    parsed = parse_command(text)
    assert parsed.command is None
    assert parsed.raw == text


def test_unknown_command_keeps_its_words() -> None:
    assert parse_command("frobnicate Acme").args == ["frobnicate", "Acme"]


def test_name_arg_joins_the_arguments() -> None:
    assert parse_command("status Acme  Ltd").name_arg == "Acme Ltd"
    assert parse_command("status").name_arg is None
    assert ParsedCommand(COMMANDS_BY_NAME["status"], [], "status").name_arg is None


def test_help_lines_come_from_the_table() -> None:
    lines = help_lines()
    assert len(lines) == len(COMMANDS) + 1
    for command, line in zip([*COMMANDS, CANCEL], lines, strict=True):
        assert line == f"{command.usage}: {command.description}"
    assert any(line.startswith("status [name]: How the sync is doing") for line in lines)


def test_why_takes_a_record_and_sync_prefix_is_optional() -> None:
    assert parse_command("sync why 200") == ParsedCommand(COMMANDS_BY_NAME["why"], ["200"], "sync why 200")
    parsed = parse_command("/sync preview Acme Ltd")
    assert parsed.command is COMMANDS_BY_NAME["preview"]
    assert parsed.name_arg == "Acme Ltd"
    assert any(line.startswith("why <code or name>: ") for line in help_lines())
