"""`Turn`: what our handlers need from one Bot Framework turn, with botbuilder kept inside."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.schema import Activity, ActivityTypes, ConversationReference

from bot.storage.base import ConversationRef


def conversation_key(channel_id: str, conversation_id: str) -> str:
    """Channel replies carry `;messageid=...` in the conversation id: one channel is one key."""
    return f"{channel_id}:{conversation_id.split(';', 1)[0]}"


def card_activity(card: dict[str, Any], activity_id: str | None = None) -> Activity:
    activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
    if activity_id:
        activity.id = activity_id
    return activity


@dataclass
class Turn:
    context: TurnContext

    @property
    def activity(self) -> Activity:
        return self.context.activity

    @property
    def text(self) -> str:
        """The message text with the bot's @mention removed (channels and group chats)."""
        activity = self.activity
        if activity.text is None:
            return ""
        TurnContext.remove_recipient_mention(activity)
        text = activity.text or ""
        # Some clients leave the <at> markup in place when the mention entity is missing.
        while "<at>" in text and "</at>" in text:
            start, end = text.index("<at>"), text.index("</at>") + len("</at>")
            text = text[:start] + text[end:]
        return " ".join(text.split())

    @property
    def value(self) -> Any:
        return self.activity.value

    @property
    def user_id(self) -> str:
        """The user's Entra object id when Teams gives it, else the channel account id."""
        user = self.activity.from_property
        return str(getattr(user, "aad_object_id", None) or getattr(user, "id", "") or "")

    @property
    def user_name(self) -> str:
        return str(getattr(self.activity.from_property, "name", "") or "")

    @property
    def tenant_id(self) -> str:
        conv = self.activity.conversation
        tenant = getattr(conv, "tenant_id", None)
        if not tenant and isinstance(self.activity.channel_data, dict):
            tenant = (self.activity.channel_data.get("tenant") or {}).get("id")
        return str(tenant or "")

    @property
    def conversation_key(self) -> str:
        return conversation_key(self.activity.channel_id or "", self.activity.conversation.id or "")

    @property
    def conversation_type(self) -> str:
        return str(getattr(self.activity.conversation, "conversation_type", None) or "personal")

    @property
    def is_channel(self) -> bool:
        return self.conversation_type == "channel"

    @property
    def client_timezone(self) -> str:
        for entity in self.activity.entities or []:
            data = entity.additional_properties if hasattr(entity, "additional_properties") else {}
            if getattr(entity, "type", None) == "clientInfo":
                tz = (data or {}).get("timezone")
                if isinstance(tz, str):
                    return tz
        return ""

    @property
    def reply_to_id(self) -> str:
        return str(self.activity.reply_to_id or "")

    def reference(self) -> ConversationRef:
        ref: ConversationReference = TurnContext.get_conversation_reference(self.activity)
        return ConversationRef(
            key=self.conversation_key,
            teams_tenant_id=self.tenant_id,
            conversation_type=self.conversation_type,
            reference=ref.serialize(),
        )

    async def send_text(self, text: str) -> str:
        response = await self.context.send_activity(MessageFactory.text(text))
        return str(getattr(response, "id", "") or "")

    async def send_card(self, card: dict[str, Any]) -> str:
        response = await self.context.send_activity(card_activity(card))
        return str(getattr(response, "id", "") or "")

    async def update_card(self, activity_id: str, card: dict[str, Any]) -> None:
        await self.context.update_activity(card_activity(card, activity_id))

    async def typing(self) -> None:
        await self.context.send_activity(Activity(type=ActivityTypes.typing))
