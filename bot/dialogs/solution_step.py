"""The setup's solution step: is our solution in the environment, which version, and "Install it for me".

Three ways to get the solution (the card shows all that apply): the bot imports it for a user who holds
the import privileges (bot.sync.tables.IMPORT_PRIVILEGES), a download link to the managed zip this bot
serves, and the AppSource listing when one is configured. An older version already installed is offered
the same way as an upgrade; the setup may carry on with it while it is compatible.

An import runs for a minute or more, longer than a turn may: `start` queues it and returns at once; the
flow then follows it in the background (`progress`) and moves the setup on when it ends.
"""

from __future__ import annotations

import functools
import logging

from bot.dialogs.kit import SetupKit
from bot.dialogs.model import DynamicsChoice, Phase, SetupState, SolutionView
from bot.errors import ConnectorError
from bot.solution import build_zip, solution_version
from bot.sync.dataverse import DataverseClient
from bot.sync.solution_install import (
    ImportHandle,
    ImportPhase,
    ImportProgress,
    KeysState,
    SolutionImport,
    SolutionState,
    SolutionStatus,
    compatible,
    keys_state,
    missing_import_privileges,
    needed_version,
    solution_status,
)
from bot.teams.turn import Turn
from cards.problem_words import error_words

log = logging.getLogger(__name__)

WHO_CAN_INSTALL = "a System Administrator or System Customizer of that environment"


def shipped_zip() -> bytes:
    """The managed zip this build ships (bot.solution caches the build)."""
    return build_zip(managed=True)


class SolutionStep:
    def __init__(self, kit: SetupKit) -> None:
        self._kit = kit

    @property
    def shipped_version(self) -> str:
        return self._kit.options.solution_version or solution_version()

    def client(self, tokens_id: str, env: DynamicsChoice) -> DataverseClient:
        token = functools.partial(self._kit.deps.dynamics_auth.access_token, tokens_id, env.url)
        return DataverseClient(self._kit.deps.http, env.api_url, token)

    async def inspect(self, dv: DataverseClient, user_id: str, previous: SolutionView) -> SolutionView:
        """What is installed, and whether this user may install or upgrade it."""
        status: SolutionStatus = await solution_status(dv, self.shipped_version)
        missing: list[str] = []
        if status.state in (SolutionState.MISSING, SolutionState.OLDER):
            missing = await missing_import_privileges(dv, user_id)
        keys: KeysState = KeysState.READY
        waiting: tuple[str, ...] = ()
        if status.usable:
            keys, waiting = await keys_state(dv)
        return SolutionView(
            keys=keys.value,
            keys_waiting=waiting,
            state=status.state.value,
            installed=status.installed,
            shipped=status.shipped,
            compatible=status.usable,
            can_install=status.state in (SolutionState.MISSING, SolutionState.OLDER) and not missing,
            missing_import=tuple(missing),
            upgrade_declined=previous.upgrade_declined,
        )

    @staticmethod
    def blocks(view: SolutionView) -> bool:
        """Whether the setup must stop at the solution step."""
        if view.state == SolutionState.MISSING.value or not view.compatible:
            return True
        if view.keys and view.keys != KeysState.READY.value:
            return True
        return view.state == SolutionState.OLDER.value and not view.upgrade_declined

    @staticmethod
    def problem(view: SolutionView, env_name: str) -> str:
        if view.compatible and view.keys == KeysState.FAILED.value:
            return (
                f"Dynamics 365 could not prepare the keys of {', '.join(view.keys_waiting)} in {env_name}. "
                "An administrator can reactivate them (Power Apps, the table, Keys), then choose Check again."
            )
        if view.compatible and view.keys == KeysState.BUILDING.value:
            return (
                f"Dynamics 365 is still preparing our tables in {env_name} (indexing their keys). "
                "This takes a minute or two after an install: choose Check again shortly."
            )
        if view.state == SolutionState.MISSING.value:
            return f"Our solution isn't installed in {env_name} yet."
        if not view.compatible:
            return (
                f"{env_name} has version {view.installed} of our solution, too old for this bot "
                f"(it needs {needed_version()} or later). Upgrade it to {view.shipped}."
            )
        return (
            f"{env_name} has version {view.installed} of our solution; version {view.shipped} is available. "
            "Upgrade now, or carry on with the installed version."
        )

    async def start(self, turn: Turn, state: SetupState) -> SetupState:
        """Queue the import of our zip, after checking again (on the server) that this user may."""
        env = state.dynamics
        if env is None or state.phase is not Phase.SOLUTION_CHECK:
            await turn.send_text("There's nothing to install at this step of the setup.")
            return state
        if state.solution.installing:
            await turn.send_text("The solution is already being installed: I'll carry on when it's done.")
            return state
        dv = self.client(state.tokens_id, env)
        try:
            who = await dv.who_am_i()
            view = await self.inspect(dv, who.user_id, state.solution)
            if view.state != SolutionState.MISSING.value and view.compatible and view.state != SolutionState.OLDER.value:
                return state.but(solution=view)  # installed meanwhile (another person, another tab)
            if view.state == SolutionState.NEWER.value:
                return state.but(solution=view)
            if not view.can_install:
                refused = state.but(
                    solution=view,
                    problem=f"Your Dynamics 365 user can't import solutions in {env.env_name}: "
                    f"ask {WHO_CAN_INSTALL}, or use the download below.",
                )
                await self._kit.show(turn, refused)
                return refused
            handle = await SolutionImport(dv).start(shipped_zip())
        except ConnectorError as exc:
            log.info("starting the solution import in %s failed: %s", env.env_id, type(exc).__name__)
            failed = state.but(
                problem=f"Dynamics 365 didn't start the import: {error_words(exc)}. Try again in a moment."
            )
            await self._kit.show(turn, failed)
            return failed
        installing = state.but(
            solution=view.model_copy(
                update={
                    "async_operation_id": handle.async_operation_id,
                    "import_job_id": handle.import_job_id,
                    "progress": "Queued in Dynamics 365…",
                }
            ),
            problem="",
        )
        await self._kit.show(turn, installing)
        return installing

    async def keys(self, state: SetupState) -> KeysState:
        env = state.dynamics
        if env is None:
            return KeysState.FAILED
        found, _ = await keys_state(self.client(state.tokens_id, env))
        return found

    async def progress(self, state: SetupState) -> ImportProgress:
        env = state.dynamics
        if env is None or not state.solution.installing:
            return ImportProgress(ImportPhase.FAILED, reason="The setup no longer waits for an import.")
        handle = ImportHandle(state.solution.async_operation_id, state.solution.import_job_id)
        return await SolutionImport(self.client(state.tokens_id, env)).progress(handle)


def progress_line(progress: ImportProgress) -> str:
    if progress.phase is ImportPhase.WAITING:
        return "Queued in Dynamics 365…"
    if progress.percent is not None:
        return f"Installing… {progress.percent:.0f}%"
    return "Installing…"


# What Dataverse stopping an import without a reason is called (bot.sync.solution_install leaves it "").
STOPPED = "The import was stopped."


def import_failed(reason: str) -> str:
    """Dataverse's reason, quoted as data (never markdown), with what to do next."""
    cleaned = " ".join(reason.split())[:300] or STOPPED
    return f"The import didn't complete. Dynamics 365 said: “{cleaned}”. Choose Check again, or install it by hand."


__all__ = ["SolutionStep", "compatible", "import_failed", "progress_line", "shipped_zip"]
