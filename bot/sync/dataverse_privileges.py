"""Privileges and their depth, as RetrieveUserPrivileges reports them and a Dynamics admin reads them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sync.tables import Depth, Privilege

# How the security role editor names each depth (the words a Dynamics admin knows).
DEPTH_WORDS: dict[Depth, str] = {
    Depth.BASIC: "User",
    Depth.LOCAL: "Business Unit",
    Depth.DEEP: "Parent: Child Business Units",
    Depth.GLOBAL: "Organization",
}
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

    @property
    def words(self) -> str:
        """`Read on Xero Connector at Organization level (you have User level)`."""
        text = f"{self.privilege.words} on {self.table} at {DEPTH_WORDS[self.needed]} level"
        if self.held is not None:
            text += f" (you have {DEPTH_WORDS[self.held]} level)"
        return text
