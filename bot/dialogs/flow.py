"""The setup's turns: start, reconnect, card submits, the verification code, cancel.

Every entry point opens the conversation's session once (see `session.py`), checks that the person
acting is the one who started the setup (same Teams tenant and user) and that the card names the
setup that is active, and only then moves the setup on. A card submit goes to the setup's dialog,
which looks its verb up in the table of `graph.py` and runs the action this flow registers for it
(`_card_actions`). Steps live in `xero_step`, `dynamics_step` and `settings_step`; the browser side
(OAuth routes) in `callbacks`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.core.teams import TeamsInfo, teams_get_channel_id
from botbuilder.schema import ConversationReference

from bot.dialogs.deps import SetupDeps, SetupOptions
from bot.dialogs.dynamics_step import DynamicsStep
from bot.dialogs.graph import FIRST_PHASE, Action, Event, enter
from bot.dialogs.install import InstallFollower
from bot.dialogs.kit import SetupKit
from bot.dialogs.model import Done, Mode, Phase, Provider, SetupState, StepResult
from bot.dialogs.oauth_state import MAX_CODE_ATTEMPTS, code_matches
from bot.dialogs.session import ActionHandler, CardInput, Session, Sessions
from bot.dialogs.settings_step import SettingsStep
from bot.dialogs.xero_step import XeroStep
from bot.errors import ConnectorError, ValidationFailed
from bot.storage.base import Connection, ConnectionStatus, utcnow
from bot.storage.helpers import update_connection
from bot.sync.plans import get_plan
from bot.teams.escape import md_outside
from bot.teams.state import StoreStorage
from bot.teams.turn import Turn, card_activity
from cards.problem_words import error_words
from cards.submits import (
    DynamicsPickEnvSubmit,
    SettingsSubmit,
    VerifyCodeSubmit,
    XeroPickOrgSubmit,
    parse_submit,
)
from cards.verbs import CardVerb

log = logging.getLogger(__name__)
T = TypeVar("T")

# botbuilder takes a legacy path that fails under CloudAdapter when creating a channel thread without
# an app id; in anonymous mode (local clients only) any non-empty id does.
ANONYMOUS_BOT_ID = "anonymous-bot"
STALE_SETUP = "This card belongs to a setup that is no longer active. Type **connect** to start a new one."


class SetupFlow:
    def __init__(self, deps: SetupDeps, options: SetupOptions) -> None:
        self.kit = SetupKit(deps, options)
        self.sessions = Sessions(StoreStorage(deps.store), self._discard, self._card_actions())
        self.xero = XeroStep(self.kit)
        self.dynamics = DynamicsStep(self.kit)
        self.settings = SettingsStep(self.kit)
        self._deps = deps
        self._options = options
        self.installs = InstallFollower(self)

    # -- proactive turns (OAuth callbacks) ------------------------------------------------------------

    async def in_conversation(self, reference: dict[str, Any], logic: Callable[[Turn], Awaitable[T]]) -> T:
        """Run `logic` in a proactive turn of the conversation the reference names."""
        results: list[T] = []

        async def callback(context: TurnContext) -> None:
            results.append(await logic(Turn(context)))

        ref = ConversationReference().deserialize(reference)
        await self._deps.adapter.continue_conversation(ref, callback, self._deps.settings.microsoft_app_id)
        if not results:
            raise ConnectorError("the proactive turn did not run")
        return results[0]

    # -- starting ------------------------------------------------------------------------------------

    async def start(self, turn: Turn) -> None:
        async with self.sessions.open(turn.context) as session:
            if not await self._make_room(turn, session):
                return
            state = SetupState(
                setup_id=uuid.uuid4().hex,
                connection_id=str(uuid.uuid4()),
                owner_id=turn.user_id,
                owner_name=turn.user_name,
                tenant_id=turn.tenant_id,
                conversation_key=turn.conversation_key,
                conversation_type=turn.conversation_type,
                reference=turn.reference().reference,
                client_timezone=turn.client_timezone,
                phase=FIRST_PHASE[Provider.XERO],
            )
            await session.begin(await self._post(turn, state, Provider.XERO, new_thread=turn.is_channel))

    async def reconnect(self, turn: Turn, connection_id: str, provider: Provider) -> None:
        """Sign in to one provider again for an existing connection (the other side is left alone)."""
        connection = await self._deps.store.get_connection(connection_id)
        if not _visible(connection, turn):
            await turn.send_text("I can't find that connection in this conversation.")
            return
        assert connection is not None
        async with self.sessions.open(turn.context) as session:
            if not await self._make_room(turn, session):
                return
            state = SetupState(
                setup_id=uuid.uuid4().hex,
                mode=Mode.RECONNECT_XERO if provider is Provider.XERO else Mode.RECONNECT_DYNAMICS,
                connection_id=connection.id,
                connection_name=connection.name,
                owner_id=turn.user_id,
                owner_name=turn.user_name,
                tenant_id=turn.tenant_id,
                conversation_key=turn.conversation_key,
                conversation_type=turn.conversation_type,
                reference=turn.reference().reference,
                client_timezone=turn.client_timezone,
                thread_id=connection.thread_activity_id,
                phase=FIRST_PHASE[provider],
            )
            await session.begin(await self._post(turn, state, provider, new_thread=False))

    async def _make_room(self, turn: Turn, session: Session) -> bool:
        """One setup per conversation: refuse while one is live; replace one left idle."""
        current = session.state
        if current is None:
            return True
        if current.idle_for(utcnow()) < self._options.idle_timeout:
            mine = current.owner_id == turn.user_id
            who = "You have" if mine else f"{md_outside(current.owner_name or 'Someone', 80)} has"
            stop = "type **cancel** to stop it" if mine else "only they can cancel it"
            await turn.send_text(f"{who} a setup in progress in this conversation: finish it on its card, or {stop}.")
            return False
        await session.cancel()
        await self.kit.show(turn, current, cancelled=True)
        return True

    async def _post(self, turn: Turn, state: SetupState, provider: Provider, *, new_thread: bool) -> SetupState:
        """Post the checklist (in a channel, as a new thread of its own) with a sign-in link on it."""
        if not new_thread:
            state = await self.kit.signin(state, provider)
            return state.but(card_id=await turn.send_card(self.kit.view.setup_card(state)))
        # The link must carry the thread's reference, known only once the thread exists: post, then link.
        reference, card_id = await self._new_thread(turn, self.kit.view.setup_card(state))
        state = await self.kit.signin(state.but(reference=reference, card_id=card_id, thread_id=card_id), provider)
        await self.kit.show(turn, state)
        await turn.send_text("I started the setup in a new thread of this channel. Everyone can see it; only you can use it.")
        return state

    async def _new_thread(self, turn: Turn, card: dict[str, Any]) -> tuple[dict[str, Any], str]:
        channel_id = teams_get_channel_id(turn.activity)
        app_id = self._deps.settings.microsoft_app_id or ANONYMOUS_BOT_ID
        if not channel_id:
            card_id = await turn.send_card(card)
            return turn.reference().reference, card_id
        reference, activity_id = await TeamsInfo.send_message_to_teams_channel(
            turn.context, card_activity(card), channel_id, bot_app_id=app_id
        )
        return dict(reference.serialize()), str(activity_id)

    # -- cancel --------------------------------------------------------------------------------------

    async def cancel(self, turn: Turn) -> None:
        async with self.sessions.open(turn.context) as session:
            state = session.state
            if state is None:
                await turn.send_text("There's nothing to cancel here.")
                return
            if not await self._owner(turn, state):
                return
            await self._cancel(turn, session, state)

    async def _cancel(self, turn: Turn, session: Session, state: SetupState) -> None:
        await session.cancel()
        await self.kit.show(turn, state, cancelled=True)
        await self.settings.closed(turn, state, "Setup cancelled")
        await turn.send_text("Setup cancelled. Nothing was kept; type **connect** to start again.")

    async def _discard(self, state: SetupState) -> None:
        """The dialog's cancel hook: pending sign-ins and the tokens this setup gathered go."""
        await self.kit.states.discard_pending(state.setup_id)
        await self.kit.discard_tokens(state)
        log.info("setup %s cancelled; its sign-ins were discarded", state.setup_id)

    # -- the verification code -----------------------------------------------------------------------

    async def has_pending_code(self, turn: Turn) -> bool:
        state = await self.sessions.peek(turn.context)
        return state is not None and state.verification is not None

    async def has_setup(self, turn: Turn) -> bool:
        return await self.sessions.peek(turn.context) is not None

    async def verify(self, turn: Turn, code: str) -> bool:
        """A code typed in the chat or sent by Teams' sign-in popup (signin/verifyState)."""
        async with self.sessions.open(turn.context) as session:
            state = session.state
            if state is None or state.verification is None:
                await turn.send_text("No sign-in is waiting for a code here.")
                return False
            return await self._verify(turn, session, state, code)

    async def _verify(self, turn: Turn, session: Session, state: SetupState, code: str) -> bool:
        check = state.verification
        assert check is not None
        matches = code_matches(state.setup_id, code, check.code_hash)
        if not _same_person(turn, state):
            owner = md_outside(state.owner_name, 80) or "the person who started this setup"
            await turn.send_text(f"Only {owner} can confirm this sign-in.")
            if matches:
                # The code was meant for the owner alone: whoever has it saw the sign-in page, so the
                # login in that browser cannot be trusted to be the owner's.
                log.warning("setup %s: verification code typed by someone else; sign-in discarded", state.setup_id)
                session.save(
                    await self.kit.fail(
                        turn,
                        state,
                        check.provider,
                        "Someone other than the person who started the setup typed the code, so I discarded that sign-in.",
                    )
                )
            return False
        if utcnow() >= check.expires_at:
            session.save(await self.kit.fail(turn, state, check.provider, "The code expired."))
            return False
        if not matches:
            attempts = check.attempts + 1
            if attempts >= MAX_CODE_ATTEMPTS:
                session.save(await self.kit.fail(turn, state, check.provider, "Too many wrong codes."))
                return False
            session.save(state.but(verification=check.model_copy(update={"attempts": attempts})))
            left = MAX_CODE_ATTEMPTS - attempts
            await turn.send_text(f"That code doesn't match the sign-in page. Try again ({left} tries left).")
            return False
        secret = await self.kit.states.take_pending(state.setup_id, check.provider)
        if secret is None:
            session.save(await self.kit.fail(turn, state, check.provider, "The sign-in expired before it was confirmed."))
            return False
        confirmed = state.but(verification=None)
        step = self.xero if check.provider is Provider.XERO else self.dynamics
        await self.apply(turn, session, await step.on_verified(turn, confirmed, secret))
        return True

    async def apply(self, turn: Turn, session: Session, result: StepResult) -> None:
        """Keep what a step produced; the settings card goes out when the setup reaches it."""
        if isinstance(result, Done):
            await self._finish_reconnect(turn, session, result.state)
            return
        state = result
        if state.phase is Phase.SETTINGS and not state.settings_card_id:
            state = await self.settings.show(turn, state)
        session.save(state)

    # -- card submits --------------------------------------------------------------------------------

    async def on_submit(self, turn: Turn, value: dict[str, Any]) -> None:
        async with self.sessions.open(turn.context) as session:
            state = session.state
            claimed = value.get("setup_id")
            if state is None or not isinstance(claimed, str) or claimed != state.setup_id:
                # A card of a finished or cancelled setup, or data naming another setup: change nothing.
                await turn.send_text(STALE_SETUP)
                return
            if not await self._owner(turn, state):
                return
            try:
                submit = parse_submit(value)
            except ValidationFailed as exc:
                if value.get("verb") == CardVerb.SETTINGS_SUBMIT.value and state.phase is Phase.SETTINGS:
                    await self.settings.redisplay(turn, state, value, exc)
                else:
                    await turn.send_text(f"⚠️ {exc}")
                return
            await session.continue_with(turn, submit, value)

    def _card_actions(self) -> dict[Action, ActionHandler]:
        """What each action of the table (`graph.STATES`, `graph.FALLBACKS`) runs."""

        async def choose_org(card: CardInput, state: SetupState) -> None:
            assert isinstance(card.submit, XeroPickOrgSubmit)  # the verb the table routed
            card.session.save(await self.xero.choose(card.turn, state, card.submit.xero_tenant_id))

        async def choose_env(card: CardInput, state: SetupState) -> None:
            assert isinstance(card.submit, DynamicsPickEnvSubmit)
            await self.apply(card.turn, card.session, await self.dynamics.choose(card.turn, state, card.submit.environment_id))

        async def check_again(card: CardInput, state: SetupState) -> None:
            await self.apply(card.turn, card.session, await self.dynamics.check(card.turn, state))

        async def keep_version(card: CardInput, state: SetupState) -> None:
            keep = state.but(solution=state.solution.model_copy(update={"upgrade_declined": True}))
            await self.apply(card.turn, card.session, await self.dynamics.check(card.turn, keep))

        async def verify(card: CardInput, state: SetupState) -> None:
            assert isinstance(card.submit, VerifyCodeSubmit)
            await self._verify(card.turn, card.session, state, card.submit.verification_code)

        async def save_settings(card: CardInput, state: SetupState) -> None:
            assert isinstance(card.submit, SettingsSubmit)
            await self._confirm(card.turn, card.session, state, card.submit, card.raw)

        return {
            Action.CANCEL: lambda card, state: self._cancel(card.turn, card.session, state),
            Action.RETRY_XERO: lambda card, state: self._retry(card.turn, card.session, state, Provider.XERO),
            Action.RETRY_DYNAMICS: lambda card, state: self._retry(card.turn, card.session, state, Provider.DYNAMICS),
            Action.CHOOSE_ORG: choose_org,
            Action.CHOOSE_ENV: choose_env,
            Action.CHECK_AGAIN: check_again,
            Action.INSTALL: lambda card, state: self.installs.start(card.turn, card.session, state),
            Action.KEEP_VERSION: keep_version,
            Action.VERIFY: verify,
            Action.SAVE_SETTINGS: save_settings,
        }

    async def _retry(self, turn: Turn, session: Session, state: SetupState, provider: Provider) -> None:
        if state.phase is Phase.SOLUTION_CHECK and len(state.dynamics_envs) > 1:
            # Signed in already: back to the choice of environment rather than a new sign-in.
            again = enter(state, Event.ENVS, problem="", missing_privileges=())
        else:
            await self.kit.discard_tokens(state, provider)
            again = await self.kit.signin(state, provider)
        await self.kit.show(turn, again)
        session.save(again)

    async def _confirm(
        self, turn: Turn, session: Session, state: SetupState, submit: SettingsSubmit, raw: dict[str, Any]
    ) -> None:
        try:
            connection = await self.settings.confirm(turn, state, submit)
        except ValidationFailed as exc:
            await self.settings.redisplay(turn, state, raw, exc)
            return
        except ConnectorError as exc:
            log.warning("setup %s: creating the connection failed: %s", state.setup_id, type(exc).__name__)
            failed = ValidationFailed(f"Dynamics 365 didn't accept the connection's records: {error_words(exc)}. Choose Save to try again.")
            await self.settings.redisplay(turn, state, raw, failed)
            return
        done = state.but(connection_name=connection.name)
        plan = get_plan(connection.plan)
        try:
            await self.kit.show(turn, done, finished=True, plan_words=plan.schedule_in_words)
            await self.settings.closed(turn, done, f"Settings saved: {connection.name}")
            await session.end()
        finally:
            # Last, so the "created" message precedes anything the run posts; even after a failed
            # card update, since the connection exists now and must get its first run.
            await self.settings.start_first_run(turn, connection)

    async def _finish_reconnect(self, turn: Turn, session: Session, state: SetupState) -> None:
        def reactivate(current: Connection) -> Connection:
            if current.status is not ConnectionStatus.NEEDS_RECONNECTION:
                return current
            return current.model_copy(update={"status": ConnectionStatus.ACTIVE, "status_reason": "", "updated_at": utcnow()})

        connection = await update_connection(self._deps.store, state.connection_id, reactivate)
        if connection is not None and connection.status is ConnectionStatus.ACTIVE:
            await self._deps.scheduler.schedule_first_run(connection.id)
        await self.kit.show(turn, state, finished=True)
        await session.end()
        if state.mode is Mode.RECONNECT_XERO and state.xero:
            what = f"Xero: {md_outside(state.xero.org_name)}"
        else:
            what = f"Dynamics 365: {md_outside(state.dynamics.env_name if state.dynamics else state.connection_name)}"
        tail = " A run starts now to check it." if connection and connection.status is ConnectionStatus.ACTIVE else ""
        await turn.send_text(f"✅ Reconnected to {what}.{tail}")

    async def _owner(self, turn: Turn, state: SetupState) -> bool:
        if _same_person(turn, state):
            return True
        await turn.send_text(
            f"Only {md_outside(state.owner_name, 80) or 'the person who started this setup'} can use this setup. "
            "To connect another organisation, wait until it is finished, then type **connect**."
        )
        return False


def _same_person(turn: Turn, state: SetupState) -> bool:
    return bool(turn.user_id) and turn.user_id == state.owner_id and turn.tenant_id == state.tenant_id


def _visible(connection: Connection | None, turn: Turn) -> bool:
    return (
        connection is not None
        and connection.conversation_key == turn.conversation_key
        and connection.teams_tenant_id == turn.tenant_id
        and connection.status is not ConnectionStatus.DISCONNECTED
    )
