"""The welcome card, once per installation: Teams sends both installationUpdate and conversationUpdate."""

from __future__ import annotations

from bot.storage.base import Counters
from bot.teams.turn import Turn
from cards import WelcomeCardData, render_welcome_card

# Both events of one installation arrive within seconds; a later reinstall is welcomed again.
DEDUPE_SECONDS = 120.0


class Welcomer:
    def __init__(self, counters: Counters, bot_name: str = "Xero Sync") -> None:
        self._counters = counters
        self._bot_name = bot_name

    async def __call__(self, turn: Turn) -> None:
        first = await self._counters.incr_counter(f"welcome:{turn.conversation_key}", DEDUPE_SECONDS)
        if first != 1:
            return
        card = render_welcome_card(
            WelcomeCardData(bot_name=self._bot_name, needs_mention=turn.conversation_type != "personal")
        )
        await turn.send_card(card)
