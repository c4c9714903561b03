"""Connect to Dynamics 365: MSAL's auth-code flow (PKCE, organizations authority), the environment
(Global Discovery, enabled ones only), then our solution and the user's privileges on our tables.

MSAL keeps the sign-in as a token cache. The callback redeems the code into a cache stored under a
throwaway id, which is then moved at once into the pending sign-in (encrypted, 10 minutes): a login
nobody confirms leaves nothing behind. Confirmed, the cache goes under the setup's own tokens id.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from bot.dialogs.failures import SigninFailure
from bot.dialogs.graph import Event, enter
from bot.dialogs.kit import SetupKit
from bot.dialogs.model import Done, DynamicsChoice, EnvOption, Mode, Provider, SetupState, StepResult
from bot.dialogs.oauth_state import Binding
from bot.dialogs.solution_step import SolutionStep
from bot.dialogs.wording import privilege_words
from bot.errors import ConnectorError, OAuthFlowError
from bot.storage.base import TokenKind
from bot.sync.dataverse import DataverseClient
from bot.sync.dynamics_auth import DynamicsAccount
from bot.teams.turn import Turn
from cards.problem_words import error_words

log = logging.getLogger(__name__)


class DynamicsStep:
    def __init__(self, kit: SetupKit) -> None:
        self._kit = kit
        self._auth = kit.deps.dynamics_auth
        self._store = kit.deps.store
        self.solution = SolutionStep(kit)

    async def authorize_url(self, binding: Binding) -> str:
        """Where `/oauth/dynamics/start` sends the browser: MSAL's flow, kept under MSAL's own state."""
        flow = await self._auth.start_flow(self._kit.redirect_uri(Provider.DYNAMICS))
        await self._kit.states.begin_flow(binding, {"flow": flow}, state=str(flow.get("state", "")))
        return str(flow["auth_uri"])

    async def on_callback(
        self, state: SetupState, query: dict[str, str], secret: dict[str, Any]
    ) -> tuple[SetupState, str | None, dict[str, Any]]:
        """Redeem the code. Returns the setup, the code for the page (None when the account itself
        proves who signed in) and the sign-in to continue with. Raises OAuthFlowError."""
        flow = secret.get("flow")
        if not isinstance(flow, dict):
            raise OAuthFlowError(SigninFailure.INVALID_STATE, "The sign-in could not be matched to the setup.")
        scratch = f"signin.{state.setup_id}"
        try:
            account = await self._auth.complete_flow(scratch, flow, query)
            blob = await self._store.get_tokens(scratch, TokenKind.DYNAMICS)
        finally:
            await self._store.delete_tokens(scratch, TokenKind.DYNAMICS)
        if blob is None:
            raise OAuthFlowError(SigninFailure.PROVIDER_ERROR, "Microsoft did not complete the sign-in.")
        signed_in = {"cache": blob.decode("ascii"), "account": _account(account)}
        same_person = account.tenant_id == state.tenant_id and account.object_id == state.owner_id
        if self._kit.options.trust_same_entra_account and same_person:
            return state.but(problem=""), None, signed_in
        await self._kit.states.put_pending(state.setup_id, Provider.DYNAMICS, signed_in)
        waiting, code = self._kit.await_code(state, Provider.DYNAMICS, account.username)
        return waiting, code, signed_in

    async def on_verified(self, turn: Turn, state: SetupState, secret: dict[str, Any]) -> StepResult:
        cache = secret.get("cache")
        if not isinstance(cache, str):
            return await self._kit.fail(turn, state, Provider.DYNAMICS, "The sign-in could not be read.")
        await self._store.put_tokens(state.tokens_id, TokenKind.DYNAMICS, cache.encode("ascii"))
        try:
            token = await self._auth.access_token(state.tokens_id, self._kit.deps.settings.dataverse_discovery_url)
            environments = await self._kit.deps.discovery.environments(token)
        except ConnectorError:
            return await self._kit.fail(
                turn, state, Provider.DYNAMICS, "I couldn't list your Dynamics 365 environments."
            )
        options = tuple(
            EnvOption(id=e.id, name=e.friendly_name, url=e.url, api_url=e.api_url) for e in environments
        )
        if state.mode is Mode.RECONNECT_DYNAMICS:
            return await self._reconnected(turn, state, options)
        if not options:
            return await self._kit.fail(
                turn,
                state,
                Provider.DYNAMICS,
                "That account has no Dynamics 365 environment it can use. Sign in with an account that has one.",
            )
        if len(options) == 1:
            return await self.choose(turn, state.but(dynamics_envs=options), options[0].id)
        chooser = enter(state, Event.ENVS, dynamics_envs=options, verification=None, problem="")
        await self._kit.show(turn, chooser)
        return chooser

    async def choose(self, turn: Turn, state: SetupState, env_id: str) -> SetupState:
        option = next((e for e in state.dynamics_envs if e.id == env_id), None)
        if option is None:
            await turn.send_text("That environment isn't one of the choices. Pick one from the card.")
            return state
        chosen = DynamicsChoice(env_id=option.id, env_name=option.name, url=option.url, api_url=option.api_url)
        return await self.check(turn, state.but(dynamics=chosen, verification=None))

    async def check(self, turn: Turn, state: SetupState) -> SetupState:
        """Our solution installed (and recent enough), every privilege held: on to the settings.
        Else say what is missing and how to fix it."""
        env = state.dynamics
        if env is None:
            return await self._kit.fail(turn, state, Provider.DYNAMICS, "Choose an environment first.")
        dv = self._client(state.tokens_id, env)
        try:
            who = await dv.who_am_i()
            view = await self.solution.inspect(dv, who.user_id, state.solution)
            blocked_by_solution = SolutionStep.blocks(view)
            missing = [] if blocked_by_solution else await dv.missing_privileges(who.user_id)
            user_tz = "" if blocked_by_solution or missing else (await dv.user_timezone(who.user_id) or "")
        except ConnectorError as exc:
            log.info("checking environment %s failed: %s", env.env_id, type(exc).__name__)
            checking = enter(
                state,
                Event.BLOCKED,
                missing_privileges=(),
                problem=f"I couldn't check {env.env_name} just now: {error_words(exc)}. Choose Check again in a moment.",
            )
            await self._kit.show(turn, checking)
            return checking
        if state.solution.installing and blocked_by_solution:
            # "Check again" while an import runs: keep following it.
            view = view.model_copy(
                update={k: getattr(state.solution, k) for k in ("async_operation_id", "import_job_id", "progress")}
            )
        if blocked_by_solution:
            blocked = enter(
                state,
                Event.BLOCKED,
                solution=view,
                missing_privileges=(),
                problem=SolutionStep.problem(view, env.env_name),
            )
        elif missing:
            blocked = enter(
                state,
                Event.BLOCKED,
                solution=view,
                missing_privileges=tuple(privilege_words(m) for m in missing),
                problem=f"Your Dynamics 365 user in {env.env_name} lacks {len(missing)} privilege(s) the sync needs.",
            )
        else:
            ready = env.model_copy(update={"user_id": who.user_id, "user_timezone": user_tz})
            return enter(state, Event.READY, dynamics=ready, solution=view, missing_privileges=(), problem="")
        await self._kit.show(turn, blocked)
        return blocked

    def _client(self, tokens_id: str, env: DynamicsChoice) -> DataverseClient:
        token = functools.partial(self._auth.access_token, tokens_id, env.url)
        return DataverseClient(self._kit.deps.http, env.api_url, token)

    async def _reconnected(self, turn: Turn, state: SetupState, options: tuple[EnvOption, ...]) -> StepResult:
        connection = await self._store.get_connection(state.connection_id)
        if connection is None:
            return await self._kit.fail(turn, state, Provider.DYNAMICS, "This connection no longer exists.")
        option = next((e for e in options if e.id == connection.dataverse_env_id), None)
        env_name = connection.dataverse_env_name or "the connection's environment"
        if option is None:
            return await self._kit.fail(
                turn, state, Provider.DYNAMICS, f"That account can't use {env_name}. Sign in with one that can."
            )
        env = DynamicsChoice(env_id=option.id, env_name=option.name, url=option.url, api_url=option.api_url)
        dv = self._client(state.tokens_id, env)
        try:
            who = await dv.who_am_i()
            missing = await dv.missing_privileges(who.user_id)
        except ConnectorError:
            return await self._kit.fail(turn, state, Provider.DYNAMICS, f"I couldn't check {env_name}.")
        if missing:
            listing = "; ".join(privilege_words(m) for m in missing[:10])
            return await self._kit.fail(
                turn,
                state,
                Provider.DYNAMICS,
                f"That user lacks {len(missing)} privilege(s) in {env_name}: {listing}.",
            )
        # Proven and checked: only now replace the connection's sign-in.
        blob = await self._store.get_tokens(state.tokens_id, TokenKind.DYNAMICS)
        if blob is None:
            return await self._kit.fail(turn, state, Provider.DYNAMICS, "The sign-in could not be read.")
        await self._store.put_tokens(connection.id, TokenKind.DYNAMICS, blob)
        await self._store.delete_tokens(state.tokens_id, TokenKind.DYNAMICS)
        return Done(state.but(dynamics=env.model_copy(update={"user_id": who.user_id}), problem=""))


def _account(account: DynamicsAccount) -> dict[str, str]:
    return {"username": account.username, "name": account.name, "tenant_id": account.tenant_id}
