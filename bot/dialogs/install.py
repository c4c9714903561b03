""" "Install it for me", followed to its end: queue the import in the turn, follow it in the background.

Teams wants a turn answered within seconds and an import takes a minute or more, so the turn only
queues the import (SolutionStep.start) and shows "Queued…". A background task then polls the system job
every few seconds in short proactive turns, each of which opens the setup's session, updates the progress
line on the card when it changed, and, when the import ends, either runs the environment check again
(which carries the setup on to the settings) or shows Dataverse's reason with the manual ways.

The follower holds no state of its own: the import's ids live in the setup state, so a "Check again"
or a restart finds them there, and a setup that was cancelled or replaced stops the follower.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from bot.dialogs.model import SetupState
from bot.dialogs.session import Session
from bot.dialogs.solution_step import import_failed, progress_line
from bot.errors import ConnectorError
from bot.sync.solution_install import ImportPhase, KeysState
from bot.teams.background import BackgroundTasks
from bot.teams.turn import Turn

if TYPE_CHECKING:
    from bot.dialogs.flow import SetupFlow

log = logging.getLogger(__name__)

PREPARING = "Installed; Dynamics 365 is preparing the tables…"
_NOT_INSTALLING = {"async_operation_id": "", "import_job_id": "", "progress": ""}


class InstallFollower:
    def __init__(self, flow: SetupFlow) -> None:
        self._flow = flow
        self.background = BackgroundTasks()

    async def start(self, turn: Turn, session: Session, state: SetupState) -> None:
        started = await self._flow.dynamics.solution.start(turn, state)
        session.save(started)
        if started.solution.installing and not state.solution.installing:
            self.background.spawn(
                self._follow(started.reference, started.setup_id), name=f"import:{started.setup_id}"
            )
        elif not started.solution.installing and started.solution != state.solution:
            # Installed meanwhile, or nothing to install: the usual check moves the setup on.
            await self._flow.apply(turn, session, await self._flow.dynamics.check(turn, started))

    async def _follow(self, reference: dict[str, object], setup_id: str) -> None:
        options = self._flow.kit.options
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.install_timeout_seconds
        while True:
            await asyncio.sleep(options.install_poll_seconds)
            timed_out = loop.time() > deadline

            async def step(turn: Turn, timed_out: bool = timed_out) -> bool:
                return await self._step(turn, setup_id, timed_out)

            try:
                if await self._flow.in_conversation(dict(reference), step):
                    return
            except ConnectorError as exc:
                log.warning("following the import of setup %s: %s", setup_id, type(exc).__name__)
                if timed_out:
                    return

    async def _keys_building(self, state: SetupState) -> bool:
        try:
            return await self._flow.dynamics.solution.keys(state) is KeysState.BUILDING
        except ConnectorError as exc:
            log.info("key status of setup %s unreadable: %s", state.setup_id, type(exc).__name__)
            return True

    async def _step(self, turn: Turn, setup_id: str, timed_out: bool) -> bool:
        """One look at the import. True when there is nothing more to follow."""
        async with self._flow.sessions.open(turn.context) as session:
            state = session.state
            if state is None or state.setup_id != setup_id or not state.solution.installing:
                return True
            try:
                progress = await self._flow.dynamics.solution.progress(state)
            except ConnectorError as exc:
                log.info("import progress of setup %s unreadable: %s", setup_id, type(exc).__name__)
                if not timed_out:
                    return False
                progress = None
            cleared = state.but(solution=state.solution.model_copy(update=_NOT_INSTALLING))
            if progress is not None and progress.phase is ImportPhase.SUCCEEDED:
                # Dataverse indexes the new alternate keys after the import; every write of ours needs them.
                if not timed_out and await self._keys_building(state):
                    if state.solution.progress != PREPARING:
                        preparing = state.but(solution=state.solution.model_copy(update={"progress": PREPARING}))
                        session.save(preparing)
                        await self._flow.kit.show(turn, preparing)
                    return False
                await turn.send_text("✅ Our solution is installed. Checking your privileges…")
                await self._flow.apply(turn, session, await self._flow.dynamics.check(turn, cleared))
                return True
            if progress is not None and progress.phase is ImportPhase.FAILED:
                log.info("import of setup %s failed: %s", setup_id, progress.reason[:200])
                failed = cleared.but(problem=import_failed(progress.reason))
                session.save(failed)
                await self._flow.kit.show(turn, failed)
                return True
            if timed_out:
                late = cleared.but(
                    problem="The import is taking longer than expected. Choose Check again in a few minutes."
                )
                session.save(late)
                await self._flow.kit.show(turn, late)
                return True
            assert progress is not None
            line = progress_line(progress)
            if line != state.solution.progress:
                moved = state.but(solution=state.solution.model_copy(update={"progress": line}))
                session.save(moved)
                await self._flow.kit.show(turn, moved)
            return False
