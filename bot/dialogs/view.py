"""The setup's cards, rendered from its state alone (so any bot instance renders the same card)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from bot.config import Settings
from bot.dialogs.deps import SetupOptions
from bot.dialogs.model import Mode, Phase, Provider, SetupState
from bot.storage.base import NotifyMode
from bot.sync.plans import PLANS_BY_ID
from cards import (
    Choice,
    SettingsCardData,
    SetupCardData,
    SetupStep,
    SolutionHelp,
    StepState,
    StepStatus,
    render_settings_card,
    render_setup_card,
)
from cards.template import Json
from cards.timezones import valid_zones

_CURRENT: dict[Phase, SetupStep] = {
    Phase.XERO_SIGNIN: SetupStep.XERO,
    Phase.XERO_VERIFY: SetupStep.XERO,
    Phase.XERO_PICK_ORG: SetupStep.XERO,
    Phase.DYNAMICS_SIGNIN: SetupStep.DYNAMICS,
    Phase.DYNAMICS_VERIFY: SetupStep.DYNAMICS,
    Phase.DYNAMICS_PICK_ENV: SetupStep.DYNAMICS,
    Phase.SOLUTION_CHECK: SetupStep.SOLUTION,
    Phase.SETTINGS: SetupStep.SETTINGS,
}
WAITING_FOR_CODE = "Signed in. Confirm it's you: type the code from the sign-in page here."
TEAMS_CHANNEL_ID = "msteams"


def has_signin_popup(reference: Mapping[str, Any]) -> bool:
    """Whether the client of this conversation opens Teams' sign-in popup for a card's signin action.

    Real Teams reaches the bot from its Bot Connector over HTTPS on a public host
    (https://smba.trafficmanager.net/...). The Agents Playground is a local stand-in for it
    (http://localhost:56150/_connector): it sends nothing for a signin action but opens an
    Action.OpenUrl in a real popup, so there the card must use OpenUrl and the typed code. Anything
    that is not clearly Teams (another channel, plain HTTP, a loopback host) gets OpenUrl: it works
    in every client, and the typed code proves the sign-in wherever the popup is missing.
    """
    if reference.get("channelId") != TEAMS_CHANNEL_ID:
        return False
    service_url = reference.get("serviceUrl")
    if not isinstance(service_url, str):
        return False
    parts = urlsplit(service_url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".localhost"):
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a DNS name that is not localhost


def _owner_note(state: SetupState) -> str:
    """Others can see a card in a channel or group chat: say whose it is."""
    if state.conversation_type == "personal":
        return ""
    return f"Started by {state.owner_name or 'someone'}; only they can use this card."


class SetupView:
    def __init__(self, settings: Settings, options: SetupOptions) -> None:
        self._settings = settings
        self._options = options

    def start_url(self, provider: Provider, link: str) -> str:
        return f"{self._settings.public_base_url}/oauth/{provider.value}/start?link={quote(link, safe='')}"

    def setup_card(
        self,
        state: SetupState,
        *,
        finished: bool = False,
        cancelled: bool = False,
        plan_words: str = "",
        field_errors: Mapping[str, str] | None = None,
    ) -> Json:
        signing_in = state.phase in (
            Phase.XERO_SIGNIN,
            Phase.XERO_VERIFY,
            Phase.DYNAMICS_SIGNIN,
            Phase.DYNAMICS_VERIFY,
        )
        provider = state.phase.provider
        link_url = self.start_url(provider, state.link) if signing_in and provider and state.link else ""
        data = SetupCardData(
            setup_id=state.setup_id,
            steps=self._steps(state, finished),
            current=_CURRENT[state.phase],
            problem=state.problem,
            xero_start_url=link_url if provider is Provider.XERO else "",
            dynamics_start_url=link_url if provider is Provider.DYNAMICS else "",
            signin_popup=has_signin_popup(state.reference),
            ask_verification_code=state.phase in (Phase.XERO_VERIFY, Phase.DYNAMICS_VERIFY),
            xero_orgs=tuple(Choice(value=o.tenant_id, title=o.name) for o in state.xero_orgs)
            if state.phase is Phase.XERO_PICK_ORG
            else (),
            dynamics_envs=tuple(Choice(value=e.id, title=e.name) for e in state.dynamics_envs)
            if state.phase is Phase.DYNAMICS_PICK_ENV
            else (),
            # The flow's Dynamics retry goes back to this choice from the solution step (flow._retry).
            other_environments=state.phase is Phase.SOLUTION_CHECK and len(state.dynamics_envs) > 1,
            solution=SolutionHelp(
                appsource_url=self._options.appsource_url,
                solution_zip_url=self._options.solution_zip_url,
                missing_privileges=state.missing_privileges,
                env_name=state.dynamics.env_name if state.dynamics else "",
                state=state.solution.state,
                installed_version=state.solution.installed,
                shipped_version=state.solution.shipped,
                compatible=state.solution.compatible,
                can_install=state.solution.can_install,
                missing_import=state.solution.missing_import,
                installing=state.solution.installing,
                progress=state.solution.progress,
            ),
            connection_id=state.connection_id if finished else "",
            connection_name=state.connection_name or _owner_note(state),
            schedule_in_words=plan_words,
            field_errors=dict(field_errors or {}),
            finished=finished,
            cancelled=cancelled,
        )
        return render_setup_card(data)

    def _steps(self, state: SetupState, finished: bool) -> tuple[StepStatus, ...]:
        waiting_code = state.phase in (Phase.XERO_VERIFY, Phase.DYNAMICS_VERIFY)
        in_xero = state.phase.provider is Provider.XERO
        in_dynamics = state.phase in (Phase.DYNAMICS_SIGNIN, Phase.DYNAMICS_VERIFY, Phase.DYNAMICS_PICK_ENV)
        if state.mode is Mode.RECONNECT_XERO:
            org = state.xero.org_name if state.xero else state.connection_name
            if finished:
                return (StepStatus(step=SetupStep.XERO, state=StepState.DONE, detail=f"Reconnected to Xero: {org}"),)
            return (self._pending(SetupStep.XERO, state, waiting_code),)
        if state.mode is Mode.RECONNECT_DYNAMICS:
            env = state.dynamics.env_name if state.dynamics else state.connection_name
            if finished:
                detail = f"Reconnected to Dynamics 365: {env}"
                return (StepStatus(step=SetupStep.DYNAMICS, state=StepState.DONE, detail=detail),)
            return (self._pending(SetupStep.DYNAMICS, state, waiting_code),)

        env_ok = finished or state.phase is Phase.SETTINGS
        env_name = state.dynamics.env_name if state.dynamics else ""
        xero = (
            StepStatus(step=SetupStep.XERO, state=StepState.DONE, detail=f"Connected to Xero: {state.xero.org_name}")
            if state.xero
            else self._pending(SetupStep.XERO, state, waiting_code and in_xero)
            if in_xero
            else StepStatus(step=SetupStep.XERO)
        )
        if env_ok:
            solution = StepStatus(step=SetupStep.SOLUTION, state=StepState.DONE, detail=f"Installed in {env_name}")
            dynamics = StepStatus(
                step=SetupStep.DYNAMICS, state=StepState.DONE, detail=f"Connected to Dynamics 365: {env_name}"
            )
        elif state.phase is Phase.SOLUTION_CHECK:
            what = (
                "Installing"
                if state.solution.installing
                else "Privileges missing"
                if state.missing_privileges
                else "Upgrade available"
                if state.solution.state == "older"
                else "Not installed"
            )
            solution = StepStatus(step=SetupStep.SOLUTION, state=StepState.ATTENTION, detail=f"{what} in {env_name}")
            dynamics = StepStatus(step=SetupStep.DYNAMICS, detail=f"Signed in; environment {env_name}")
        else:
            solution = StepStatus(step=SetupStep.SOLUTION)
            dynamics = (
                self._pending(SetupStep.DYNAMICS, state, waiting_code)
                if in_dynamics
                else StepStatus(step=SetupStep.DYNAMICS)
            )
        settings = (
            StepStatus(step=SetupStep.SETTINGS, state=StepState.DONE, detail=state.connection_name)
            if finished
            else StepStatus(step=SetupStep.SETTINGS)
        )
        first = StepStatus(
            step=SetupStep.FIRST_SYNC, detail="Running now; I'll post the result here." if finished else ""
        )
        return (xero, solution, dynamics, settings, first)

    @staticmethod
    def _pending(step: SetupStep, state: SetupState, waiting_code: bool) -> StepStatus:
        if state.problem:
            return StepStatus(step=step, state=StepState.ATTENTION, detail="Needs another try")
        if not waiting_code:
            return StepStatus(step=step)
        who = state.verification.signed_in_as if state.verification else ""
        # What the sign-in would connect, before the code is typed: a swapped sign-in shows here.
        detail = f"{WAITING_FOR_CODE} It would connect: {who}." if who else WAITING_FOR_CODE
        return StepStatus(step=step, detail=detail)

    def settings_card(
        self,
        state: SetupState,
        *,
        name: str = "",
        plan: str = "",
        timezone: str = "",
        notify_mode: NotifyMode = NotifyMode.EVERY_RUN,
        field_errors: Mapping[str, str] | None = None,
        form_error: str = "",
    ) -> Json:
        xero_tz = state.xero.timezone if state.xero else ""
        dynamics_tz = state.dynamics.user_timezone if state.dynamics else ""
        zones = valid_zones()
        # The Teams client's zone first: it is where the person setting this up works.
        chosen = timezone or next((z for z in (state.client_timezone, xero_tz, dynamics_tz) if z in zones), "UTC")
        data = SettingsCardData(
            setup_id=state.setup_id,
            connection_name=name or (state.xero.org_name if state.xero else ""),
            plan=plan if plan in PLANS_BY_ID else "trial",
            timezone=chosen,
            notify_mode=notify_mode,
            last_run_at=None,
            xero_timezone=xero_tz,
            dynamics_timezone=dynamics_tz,
            field_errors=dict(field_errors or {}),
            form_error=form_error,
        )
        return render_settings_card(data)
