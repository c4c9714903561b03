"""Teams users and conversations with the bot, as the Teams channel posts their activities.

`Chat` builds activities the way Teams does (a personal chat, or a channel post that @mentions the bot,
threaded by `;messageid=`) and posts them to the bot's `/api/messages` over HTTP.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from sandbox.entra import ALICE as ENTRA_ALICE
from sandbox.entra import CONTOSO
from sandbox.entra.directory import sandbox_uuid
from tests.scenario.connector import Outbound

if TYPE_CHECKING:
    from tests.scenario.botharness import BotHarness

__all__ = ["ALICE", "BOB", "BOT_ID", "BOT_NAME", "TENANT_ID", "Chat", "TeamsUser"]

BOT_ID = "28:xero-sync-bot"
BOT_NAME = "Xero Sync"
TENANT_ID = CONTOSO.id


@dataclass(frozen=True)
class TeamsUser:
    name: str
    aad_object_id: str
    timezone: str = "Europe/London"  # sent as the clientInfo entity, as the Teams client does
    tenant_id: str = TENANT_ID

    @property
    def id(self) -> str:
        return f"29:{self.aad_object_id}"

    def account(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "aadObjectId": self.aad_object_id}


# Alice in Teams is the same Entra user as the Entra sandbox's Alice (a Dynamics sign-in as her proves it).
ALICE = TeamsUser("Alice Anders", ENTRA_ALICE.oid)
BOB = TeamsUser("Bob Brown", sandbox_uuid("user:bob@contoso.example"), timezone="Europe/Paris")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class Chat:
    """One Teams conversation with the bot, as the Teams channel would post its activities."""

    def __init__(
        self, bot: BotHarness, user: TeamsUser, *, conversation_id: str, team_id: str = "", channel_id: str = ""
    ) -> None:
        self.bot = bot
        self.user = user
        self.conversation_id = conversation_id
        self.team_id = team_id
        self.channel_id = channel_id

    @property
    def is_channel(self) -> bool:
        return bool(self.channel_id)

    @property
    def key(self) -> str:
        """The store's conversation key for this chat (channel-wide in a channel)."""
        return f"msteams:{self.conversation_id}"

    def _conversation(self, thread: str) -> dict[str, Any]:
        if not self.is_channel:
            return {"id": self.conversation_id, "conversationType": "personal", "tenantId": TENANT_ID}
        return {
            "id": f"{self.channel_id};messageid={thread}",
            "conversationType": "channel",
            "isGroup": True,
            "tenantId": TENANT_ID,
        }

    def activity(
        self, kind: str, user: TeamsUser | None = None, *, thread: str = "", **fields: Any
    ) -> dict[str, Any]:
        who = user or self.user
        activity_id = fields.pop("id", None) or f"1{uuid.uuid4().int % 10**12:012d}"
        channel_data: dict[str, Any] = {"tenant": {"id": who.tenant_id}}
        if self.is_channel:
            channel_data.update(
                teamsChannelId=self.channel_id,
                teamsTeamId=self.team_id,
                channel={"id": self.channel_id, "name": "General"},
                team={"id": self.team_id, "name": "Finance"},
            )
        conversation = self._conversation(thread or activity_id)
        conversation["tenantId"] = who.tenant_id
        return {
            "type": kind,
            "id": activity_id,
            "timestamp": _now(),
            "localTimestamp": _now(),
            "channelId": "msteams",
            "serviceUrl": self.bot.connector.url,
            "from": who.account(),
            "conversation": conversation,
            "recipient": {"id": BOT_ID, "name": BOT_NAME},
            "locale": "en-GB",
            "entities": [
                {"type": "clientInfo", "locale": "en-GB", "country": "GB", "platform": "Web", "timezone": who.timezone}
            ],
            "channelData": channel_data,
            **fields,
        }

    async def post(self, activity: dict[str, Any]) -> httpx.Response:
        return await self.bot.http.post(f"{self.bot.url}/api/messages", json=activity)

    async def say(self, text: str, *, user: TeamsUser | None = None, thread: str = "") -> httpx.Response:
        """A message; in a channel it @mentions the bot, as a new post unless `thread` names one."""
        fields: dict[str, Any] = {"text": text, "textFormat": "plain"}
        if self.is_channel:
            mention = f"<at>{BOT_NAME}</at>"
            fields["text"] = f"{mention} {text}"
            extra = {"type": "mention", "mentioned": {"id": BOT_ID, "name": BOT_NAME}, "text": mention}
            activity = self.activity("message", user, thread=thread, **fields)
            activity["entities"].append(extra)
        else:
            activity = self.activity("message", user, **fields)
        return await self.post(activity)

    def _thread_of(self, card: Outbound) -> str:
        if not self.is_channel:
            return ""
        _, _, thread = card.conversation_id.partition(";messageid=")
        return thread or card.activity_id

    async def submit(
        self, card: Outbound, data: dict[str, Any], *, user: TeamsUser | None = None
    ) -> httpx.Response:
        """An Action.Submit on `card`: `data` is the action's data merged with the card's inputs."""
        activity = self.activity("message", user, thread=self._thread_of(card), value=data, replyToId=card.activity_id)
        return await self.post(activity)

    async def click(
        self, card: Outbound, title: str, inputs: dict[str, Any] | None = None, *, user: TeamsUser | None = None
    ) -> httpx.Response:
        """Press the card's Action.Submit called `title`, with these input values."""
        action = card.action(title)
        assert action.get("type") == "Action.Submit", f"{title} is not a submit action: {action}"
        return await self.submit(card, {**(inputs or {}), **action.get("data", {})}, user=user)

    async def invoke(
        self, name: str, value: Any, *, user: TeamsUser | None = None, card: Outbound | None = None
    ) -> httpx.Response:
        thread = self._thread_of(card) if card is not None else ""
        fields: dict[str, Any] = {"name": name, "value": value}
        if card is not None:
            fields["replyToId"] = card.activity_id
        return await self.post(self.activity("invoke", user, thread=thread, **fields))

    async def verify_state(self, code: str, *, user: TeamsUser | None = None, card: Outbound | None = None) -> int:
        """What Teams sends after the sign-in popup called notifySuccess(code)."""
        response = await self.invoke("signin/verifyState", {"state": code}, user=user, card=card)
        return response.status_code

    async def install(self, user: TeamsUser | None = None) -> httpx.Response:
        activity = self.activity("installationUpdate", user, action="add")
        return await self.post(activity)
