"""Who may see and operate a connection.

The rules (issue 9, "Authorization"):

- A connection is visible and operable only in the conversation where it was set up, and only from the same
  Teams (Entra) tenant. Anywhere else it does not exist: the answer is the same as for an unknown id, so a
  card submit that names another conversation's connection learns nothing.
- Anyone in that conversation may look at it and run it (status, history, now).
- Changing it (settings, pause, resume, disconnect, reconnecting a provider) is for the person who set it
  up, or for a team owner when an `OwnerCheck` says so.

Team owners: the Bot Framework roster does not tell owners from members; that takes Microsoft Graph
(`GET /teams/{id}/members` with the `TeamMember.Read.Group` resource-specific consent) or an admin list.
The default `CreatorOnly` grants no one but the creator; plug a Graph-backed `OwnerCheck` in to widen it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.storage.base import Connection, ConnectionStatus
from bot.teams.turn import Turn
from cards.elements import md_escape


class Permission(StrEnum):
    VIEW = "view"  # status, history, now
    MANAGE = "manage"  # settings, pause, resume, disconnect, reconnect


# The commands and buttons that change a connection.
MANAGE_COMMANDS = frozenset({"settings", "pause", "resume", "disconnect", "upgrade"})

NOT_HERE = "I can't find that connection in this chat. Type **status** to see the ones set up here."


@dataclass(frozen=True)
class Requester:
    """Who asks, from where: taken from the activity, which the Bot Framework authenticated."""

    tenant_id: str
    conversation_key: str
    user_id: str
    user_name: str = ""

    @classmethod
    def from_turn(cls, turn: Turn) -> Requester:
        return cls(
            tenant_id=turn.tenant_id,
            conversation_key=turn.conversation_key,
            user_id=turn.user_id,
            user_name=turn.user_name,
        )


class OwnerCheck(Protocol):
    async def is_team_owner(self, requester: Requester, connection: Connection) -> bool: ...


class CreatorOnly:
    """No team-owner lookup: only the creator manages a connection."""

    async def is_team_owner(self, requester: Requester, connection: Connection) -> bool:
        return False


class Denied(Exception):
    """The requester may not do this; `str(exc)` is what to tell them."""


class Authorizer:
    def __init__(self, owners: OwnerCheck | None = None) -> None:
        self._owners: OwnerCheck = owners or CreatorOnly()

    @staticmethod
    def visible(connection: Connection, requester: Requester) -> bool:
        """Set up in this very conversation, from the same tenant, and not disconnected."""
        return (
            connection.conversation_key == requester.conversation_key
            and connection.teams_tenant_id == requester.tenant_id
            and connection.status != ConnectionStatus.DISCONNECTED
        )

    async def may_manage(self, connection: Connection, requester: Requester) -> bool:
        if not self.visible(connection, requester):
            return False
        if requester.user_id and requester.user_id == connection.created_by_aad_id:
            return True
        return await self._owners.is_team_owner(requester, connection)

    async def require(
        self, connection: Connection | None, requester: Requester, permission: Permission
    ) -> Connection:
        """The connection if the requester may do this; raises Denied with the words to say otherwise."""
        if connection is None or not self.visible(connection, requester):
            raise Denied(NOT_HERE)
        if permission is Permission.MANAGE and not await self.may_manage(connection, requester):
            who = md_escape(connection.created_by_name) or "the person who set it up"
            raise Denied(
                f"Only {who} (who set up **{md_escape(connection.name)}**) can change its settings, pause, resume, "
                "reconnect or disconnect it. You can still see its status and history, and sync it now."
            )
        return connection

    @staticmethod
    def permission_for(command: str) -> Permission:
        return Permission.MANAGE if command in MANAGE_COMMANDS else Permission.VIEW
