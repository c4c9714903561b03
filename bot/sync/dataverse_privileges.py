"""Privileges and their depth, as RetrieveUserPrivileges reports them (the words are written in bot.dialogs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sync.tables import Depth, Privilege

# RetrieveUserPrivileges gives Depth as the PrivilegeDepth enum's name; some clients see its number.
_DEPTH_NUMBERS = {0: Depth.BASIC, 1: Depth.LOCAL, 2: Depth.DEEP, 3: Depth.GLOBAL}


def depth_of(value: Any) -> Depth | None:
    if isinstance(value, int):
        return _DEPTH_NUMBERS.get(value)
    for depth in Depth:
        if str(value).lower() == depth.value.lower():
            return depth
    return None


@dataclass(frozen=True)
class MissingPrivilege:
    name: str  # prvReadxdc_Connector
    privilege: Privilege
    table: str  # the table's display name
    needed: Depth
    held: Depth | None  # None: not held at all
