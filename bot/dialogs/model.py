"""What one setup remembers between turns: plain JSON in the dialog's state, nothing in process memory.

A setup is either a new connection (`Mode.NEW`) or a reconnect of one provider of an existing
connection (`Mode.RECONNECT_XERO`, `Mode.RECONNECT_DYNAMICS`). `Phase` says what it waits for; the card
is always rendered from this state, so a restarted bot shows exactly what the last one showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from bot.storage.base import utcnow


class Provider(StrEnum):
    XERO = "xero"
    DYNAMICS = "dynamics"

    @property
    def label(self) -> str:
        return "Xero" if self is Provider.XERO else "Dynamics 365"


class Mode(StrEnum):
    NEW = "new"
    RECONNECT_XERO = "reconnect_xero"
    RECONNECT_DYNAMICS = "reconnect_dynamics"

    @property
    def provider(self) -> Provider | None:
        """The one provider a reconnect is about (None for a new connection)."""
        if self is Mode.RECONNECT_XERO:
            return Provider.XERO
        if self is Mode.RECONNECT_DYNAMICS:
            return Provider.DYNAMICS
        return None


class Phase(StrEnum):
    """Where a setup is. Which buttons act in each phase, and what moves it to another, is declared in
    `bot.dialogs.graph` (the only place a phase is assigned)."""

    XERO_SIGNIN = "xero_signin"  # the card offers the sign-in link
    XERO_VERIFY = "xero_verify"  # signed in; waiting for the code (or signin/verifyState)
    XERO_PICK_ORG = "xero_pick_org"
    DYNAMICS_SIGNIN = "dynamics_signin"
    DYNAMICS_VERIFY = "dynamics_verify"
    DYNAMICS_PICK_ENV = "dynamics_pick_env"
    SOLUTION_CHECK = "solution_check"  # solution missing or privileges missing: "Check again"
    SETTINGS = "settings"  # the settings card is out

    @property
    def provider(self) -> Provider | None:
        if self.value.startswith("xero"):
            return Provider.XERO
        if self.value.startswith("dynamics") or self is Phase.SOLUTION_CHECK:
            return Provider.DYNAMICS
        return None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Verification(_Model):
    """A sign-in that completed in a browser and waits for the Teams user to prove it was them."""

    provider: Provider
    code_hash: str
    expires_at: datetime
    attempts: int = 0
    # What the sign-in would connect (Xero organisations, the Dynamics account), shown on the card
    # before the code is typed: a swapped sign-in is seen before it is confirmed (issue 14).
    signed_in_as: str = ""


class OrgOption(_Model):
    tenant_id: str
    name: str
    xero_connection_id: str


class EnvOption(_Model):
    id: str
    name: str
    url: str
    api_url: str


class XeroChoice(_Model):
    tenant_id: str
    xero_connection_id: str
    org_name: str
    timezone: str = ""  # IANA, "" when Xero's zone is unknown


class DynamicsChoice(_Model):
    env_id: str
    env_name: str
    url: str
    api_url: str
    user_id: str = ""  # the Dataverse systemuserid of the signed-in user
    user_timezone: str = ""


class SolutionView(_Model):
    """Our solution in the chosen environment, as the solution step shows it."""

    state: str = ""  # bot.sync.solution_install.SolutionState
    installed: str = ""  # version in the environment ("" when missing)
    shipped: str = ""  # version this bot ships
    compatible: bool = False  # the sync can run on what is installed
    can_install: bool = False  # the user holds the import privileges
    missing_import: tuple[str, ...] = ()  # the import privileges the user lacks
    # A running "Install it for me": the system job and import job to follow, and the last progress line.
    async_operation_id: str = ""
    import_job_id: str = ""
    progress: str = ""
    upgrade_declined: bool = False  # "Continue with version X" chosen
    keys: str = ""  # bot.sync.solution_install.KeysState once installed ("" before)
    keys_waiting: tuple[str, ...] = ()  # tables whose alternate keys are not usable yet

    @property
    def installing(self) -> bool:
        return bool(self.async_operation_id)


class SetupState(_Model):
    setup_id: str
    mode: Mode = Mode.NEW
    connection_id: str  # a new id for a new connection; the existing one for a reconnect
    connection_name: str = ""  # known for a reconnect
    # Who asked, where: only this user, in this tenant and conversation, may act on the setup.
    owner_id: str
    owner_name: str = ""
    tenant_id: str
    conversation_key: str
    conversation_type: str = "personal"
    # Where the card lives: the reference proactive updates use (in a channel, the setup's own thread).
    reference: dict[str, Any]
    card_id: str = ""
    thread_id: str = ""  # in a channel, the id of the thread's first message (the card)
    settings_card_id: str = ""
    client_timezone: str = ""
    phase: Phase
    link: str = ""  # the current sign-in link token; older links are refused
    problem: str = ""  # shown on the card with a Try again / Check again button
    verification: Verification | None = None
    xero_orgs: tuple[OrgOption, ...] = ()
    xero: XeroChoice | None = None
    dynamics_envs: tuple[EnvOption, ...] = ()
    dynamics: DynamicsChoice | None = None
    missing_privileges: tuple[str, ...] = ()
    solution: SolutionView = SolutionView()
    started_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    def but(self, **changes: Any) -> SetupState:
        """A copy with some fields changed and the idle clock restarted."""
        return self.model_copy(update={**changes, "updated_at": utcnow()})

    def idle_for(self, now: datetime) -> timedelta:
        return now - self.updated_at

    @property
    def tokens_id(self) -> str:
        """Where this setup keeps the tokens it has verified until it succeeds.

        A new connection has no tokens yet, so they go under its id. A reconnect must not touch the
        working connection's tokens before the new sign-in is proven and checked: a side id."""
        if self.mode is Mode.NEW:
            return self.connection_id
        return f"{self.connection_id}.reconnect.{self.setup_id}"


@dataclass(frozen=True)
class Done:
    """A step's answer when the setup is complete (a reconnect that worked)."""

    state: SetupState


StepResult = SetupState | Done
