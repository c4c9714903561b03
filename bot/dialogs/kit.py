"""What every step of the setup shares: links, codes, the card, failures, and throwing tokens away."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from botbuilder.schema import ConversationReference

from bot.dialogs.deps import SetupDeps, SetupOptions
from bot.dialogs.graph import Event, enter
from bot.dialogs.model import Provider, SetupState, Verification
from bot.dialogs.oauth_state import Binding, OAuthStates, code_hash, new_code, new_token
from bot.dialogs.view import SetupView
from bot.errors import ConnectorError
from bot.storage.base import TokenKind, utcnow
from bot.teams.escape import md_outside
from bot.teams.turn import Turn, card_activity

log = logging.getLogger(__name__)


class SetupKit:
    def __init__(self, deps: SetupDeps, options: SetupOptions) -> None:
        self.deps = deps
        self.options = options
        self.states = OAuthStates(deps.store, deps.cipher, ttl_seconds=options.state_ttl_seconds)
        self.view = SetupView(deps.settings, options)

    def redirect_uri(self, provider: Provider) -> str:
        return self.deps.settings.redirect_uri(provider.value)

    def binding(self, state: SetupState, provider: Provider, link: str) -> Binding:
        return Binding(
            provider=provider,
            setup_id=state.setup_id,
            link=link,
            tenant_id=state.tenant_id,
            user_id=state.owner_id,
            conversation_key=state.conversation_key,
            reference=state.reference,
        )

    async def signin(self, state: SetupState, provider: Provider) -> SetupState:
        """The setup at this provider's sign-in, with a fresh link (older links become stale)."""
        link = new_token()
        await self.states.issue_link(self.binding(state, provider, link))
        await self.states.discard_pending(state.setup_id)
        return enter(state, Event.LINK, provider, link=link, problem="", verification=None)

    def await_code(self, state: SetupState, provider: Provider, signed_in_as: str = "") -> tuple[SetupState, str]:
        """The setup waiting for the code shown in the browser; returns the code for the page.

        `signed_in_as` (what the sign-in would connect) is shown on the card until the code is typed."""
        code = new_code()
        verification = Verification(
            provider=provider,
            code_hash=code_hash(state.setup_id, code),
            expires_at=utcnow() + timedelta(seconds=self.options.state_ttl_seconds),
            signed_in_as=signed_in_as[:300],
        )
        return enter(state, Event.SIGNED_IN, provider, verification=verification, problem=""), code

    async def show(
        self, turn: Turn, state: SetupState, *, finished: bool = False, cancelled: bool = False, plan_words: str = ""
    ) -> None:
        """Update the checklist card in place."""
        if state.card_id:
            card = self.view.setup_card(state, finished=finished, cancelled=cancelled, plan_words=plan_words)
            await self.update(turn, state, state.card_id, card)

    @staticmethod
    async def update(turn: Turn, state: SetupState, activity_id: str, card: dict[str, Any]) -> None:
        """Replace one of the setup's cards. Addressed to the conversation the card lives in (in a
        channel, the setup's thread), whichever thread the turn came from."""
        activity = card_activity(card, activity_id)
        reference = ConversationReference().deserialize(state.reference)
        activity.conversation = reference.conversation
        activity.channel_id = reference.channel_id or turn.activity.channel_id
        activity.service_url = turn.activity.service_url
        await turn.context.adapter.update_activity(turn.context, activity)

    async def fail(self, turn: Turn, state: SetupState, provider: Provider, message: str) -> SetupState:
        """A sign-in that did not work: say why on the card and in the chat, offer Try again, keep nothing."""
        await self.states.discard_pending(state.setup_id)
        await self.discard_tokens(state, provider)
        failed = enter(state, Event.FAILED, provider, link="", problem=message, verification=None)
        await self.show(turn, failed)
        # The message may quote Xero or Dynamics (organisation, environment names): literal text.
        await turn.send_text(
            f"⚠️ The {provider.label} sign-in didn't complete: {md_outside(message, 400)} "
            "Choose **Try again** on the setup card."
        )
        return failed

    async def discard_tokens(self, state: SetupState, provider: Provider | None = None) -> None:
        """Forget the tokens this setup stored (never those of a working connection)."""
        kinds = [TokenKind.XERO, TokenKind.DYNAMICS] if provider is None else [_KIND[provider]]
        for kind in kinds:
            try:
                if kind is TokenKind.DYNAMICS:
                    await self.deps.dynamics_auth.forget(state.tokens_id)
                else:
                    await self.deps.xero_tokens.delete(state.tokens_id)
            except ConnectorError:
                log.warning("could not discard the %s tokens of setup %s", kind.value, state.setup_id)


_KIND = {Provider.XERO: TokenKind.XERO, Provider.DYNAMICS: TokenKind.DYNAMICS}
