"""Our solution's version, seen from `sync status`, and "Upgrade it for me" for an existing connection.

`sync status` shows which version of our solution the connection's environment has when it is not the
one this bot ships: older (an upgrade is offered: the same import the setup uses, or the download link),
too old to sync with (the sync fails until it is upgraded), or newer (installed by a newer bot; never
downgraded). The version is read from Dataverse at most every few minutes per environment, and a slow or
failing read never holds the status card up: it just leaves the line out.

The upgrade runs with the connection's own Dynamics 365 sign-in, after checking that that user may import
solutions, and follows the import in the background, posting the outcome in the chat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import ConnectorError
from bot.solution import build_zip, solution_version
from bot.storage.base import Connection
from bot.sync.dataverse import DataverseClient
from bot.sync.solution_install import (
    ImportHandle,
    ImportPhase,
    SolutionImport,
    SolutionState,
    SolutionStatus,
    missing_import_privileges,
    needed_version,
    solution_status,
)
from bot.teams.background import BackgroundTasks
from bot.teams.proactive import ProactiveSender
from bot.teams.turn import Turn
from cards.elements import md_escape
from cards.problem_words import error_words

log = logging.getLogger(__name__)

CACHE_SECONDS = 300.0
READ_BUDGET_SECONDS = 2.0
POLL_SECONDS = 2.0
GIVE_UP_SECONDS = 900.0


@dataclass(frozen=True)
class SolutionLine:
    """What the status card says about the solution (None from `describe` when all is as shipped)."""

    state: SolutionState
    installed: str
    shipped: str
    usable: bool

    @property
    def words(self) -> str:
        if self.state is SolutionState.MISSING:
            return "not installed: the sync can't write until it is"
        if not self.usable:
            return f"{self.installed}, too old for this bot (needs {needed_version()}): upgrade to {self.shipped}"
        if self.state is SolutionState.OLDER:
            return f"{self.installed} installed; {self.shipped} is available"
        return f"{self.installed} (newer than this bot's {self.shipped})"

    @property
    def upgradable(self) -> bool:
        return self.state in (SolutionState.MISSING, SolutionState.OLDER)


class SolutionUpgrades:
    def __init__(
        self,
        dataverse_factory: Callable[[Connection], DataverseClient] | None,
        sender: ProactiveSender,
        tasks: BackgroundTasks,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._factory = dataverse_factory
        self._sender = sender
        self._tasks = tasks
        self._poll = poll_seconds
        self._seen: dict[str, tuple[float, SolutionStatus]] = {}
        self._running: set[str] = set()

    async def describe(self, connection: Connection) -> SolutionLine | None:
        status = await self._status(connection)
        if status is None or status.state is SolutionState.CURRENT:
            return None
        return SolutionLine(status.state, status.installed, status.shipped, status.usable)

    async def _status(self, connection: Connection) -> SolutionStatus | None:
        if self._factory is None or not connection.dataverse_api_url:
            return None
        key = connection.dataverse_env_id or connection.dataverse_api_url
        cached = self._seen.get(key)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        try:
            async with asyncio.timeout(READ_BUDGET_SECONDS):
                status = await solution_status(self._factory(connection), solution_version())
        except (ConnectorError, TimeoutError) as exc:
            log.info("solution version of %s unreadable: %s", key, type(exc).__name__)
            return None
        self._seen[key] = (time.monotonic(), status)
        return status

    async def upgrade(self, turn: Turn, connection: Connection) -> None:
        if self._factory is None:
            await turn.send_text("This bot can't reach Dynamics 365 to upgrade the solution.")
            return
        key = connection.dataverse_env_id or connection.dataverse_api_url
        if key in self._running:
            await turn.send_text(
                "The solution is already being upgraded in that environment: I'll post when it's done."
            )
            return
        dv = self._factory(connection)
        try:
            status = await solution_status(dv, solution_version())
            if not (status.state is SolutionState.OLDER or status.state is SolutionState.MISSING):
                await turn.send_text(
                    f"Nothing to upgrade: {md_escape(connection.dataverse_env_name)} has version "
                    f"{md_escape(status.installed)}."
                )
                return
            who = await dv.who_am_i()
            missing = await missing_import_privileges(dv, who.user_id)
            if missing:
                await turn.send_text(
                    "I can't upgrade it with this connection's Dynamics 365 sign-in: that user can't import "
                    f"solutions (lacks {', '.join(missing[:6])}). A System Administrator or System Customizer of "
                    f"{md_escape(connection.dataverse_env_name)} can, from the download link on the status card."
                )
                return
            handle = await SolutionImport(dv).start(build_zip(managed=True))
        except ConnectorError as exc:
            await turn.send_text(
                f"⚠️ Dynamics 365 didn't start the upgrade: {md_escape(error_words(exc))}. Try again later."
            )
            return
        self._running.add(key)
        self._seen.pop(key, None)
        await turn.send_text(
            f"⏳ Upgrading our solution in {md_escape(connection.dataverse_env_name)} to {solution_version()}: "
            "I'll post here when it's done."
        )
        self._tasks.spawn(self._follow(key, dv, handle, connection), name=f"upgrade:{connection.id}")

    async def _say(self, connection: Connection, text: str) -> None:
        await self._sender.send_text(
            connection.conversation_key, text, thread_id=connection.thread_activity_id
        )

    async def _follow(
        self, key: str, dv: DataverseClient, handle: ImportHandle, connection: Connection
    ) -> None:
        importer = SolutionImport(dv)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + GIVE_UP_SECONDS
        env = md_escape(connection.dataverse_env_name)
        try:
            while loop.time() < deadline:
                await asyncio.sleep(self._poll)
                try:
                    progress = await importer.progress(handle)
                except ConnectorError:
                    continue
                if progress.phase is ImportPhase.SUCCEEDED:
                    await self._say(
                        connection, f"✅ Our solution in {env} is now version {solution_version()}."
                    )
                    return
                if progress.phase is ImportPhase.FAILED:
                    reason = md_escape(" ".join(progress.reason.split())[:300] or "The import was stopped.")
                    await self._say(
                        connection, f"⚠️ The upgrade in {env} didn't complete. Dynamics 365 said: “{reason}”."
                    )
                    return
            await self._say(
                connection, f"The upgrade in {env} is taking longer than expected; check `sync status` later."
            )
        finally:
            self._running.discard(key)
            self._seen.pop(key, None)
