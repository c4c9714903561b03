"""`OpsCommands`: running a connection from chat — status, now, history, settings, pause, resume, disconnect.

Wiring (the composition root):

    ops = OpsCommands(store, sync_service, teams_notifier, disconnector, setup_feature,
                      dataverse_factory=runtime.dataverse_factory)
    ops.register(router)                                           # commands, help, card buttons
    setup_feature.register(router, connection_settings=ops.on_settings_card)   # the shared settings card
    ... on shutdown: await ops.close()

Every command works in a personal chat, a group chat or a channel (the router strips the @mention and the
optional "/sync"). A command names a connection, or there is only one in the conversation, or the bot
asks which with a choice card and runs the command on the one picked. Who may do what is `Authorizer`'s
call (bot.teams.authz): a connection exists only in the conversation and tenant where it was set up, and
only its creator (or a team owner) changes it.

Answers come at once; slow work (a sync, writes to Dynamics 365, revoking sign-ins) runs in the
background and updates the card it answered with, so no command keeps a turn waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from bot.commands import parse_command
from bot.errors import ValidationFailed
from bot.storage.base import Connection, Store, utcnow
from bot.sync.ports import DataverseFactory
from bot.sync.service import SyncService
from bot.sync.xero import XeroClient
from bot.teams.authz import NOT_HERE, Authorizer, Denied, Permission, Requester
from bot.teams.background import BackgroundTasks
from bot.teams.disconnect import Disconnector
from bot.teams.insight import Insight
from bot.teams.lifecycle import Lifecycle, message
from bot.teams.notifier import TeamsNotifier
from bot.teams.router import Router
from bot.teams.run_now import RunNow
from bot.teams.settings_form import SettingsForm
from bot.teams.solution_upgrade import SolutionUpgrades
from bot.teams.turn import Turn
from cards import (
    Choice,
    ConnectionChoiceCardData,
    HelpCardData,
    HistoryCardData,
    MessageTone,
    StatusCardData,
    parse_submit,
    render_connection_choice_card,
    render_help_card,
    render_history_card,
    render_status_card,
)
from cards.elements import md_escape
from cards.runs import MAX_HISTORY_ROWS
from cards.submits import (
    PickConnectionSubmit,
    ReconnectDynamicsSubmit,
    ReconnectXeroSubmit,
    RetryCommandSubmit,
)
from cards.verbs import CardVerb

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 10
CONNECTION_COMMANDS = ("status", "now", "history", "settings", "pause", "resume", "disconnect")
# Card buttons that run a command on the connection they name.
VERB_COMMANDS: dict[CardVerb, str] = {
    CardVerb.RUN_NOW: "now",
    CardVerb.OPEN_SETTINGS: "settings",
    CardVerb.SHOW_STATUS: "status",
    CardVerb.SHOW_HISTORY: "history",
    CardVerb.RESUME_SYNC: "resume",
    CardVerb.SOLUTION_UPGRADE: "upgrade",
}

Handler = Callable[[Turn, Requester, Connection, int | None], Awaitable[None]]


class SetupEntry(Protocol):
    """The setup feature (bot.dialogs.SetupFeature): a new connection, or one provider signed in again."""

    async def start_setup(self, turn: Turn) -> None: ...

    async def reconnect(self, turn: Turn, connection_id: str, provider: str) -> None: ...


class OpsCommands:
    def __init__(
        self,
        store: Store,
        sync: SyncService,
        notifier: TeamsNotifier,
        disconnector: Disconnector,
        setup: SetupEntry,
        *,
        dataverse_factory: DataverseFactory | None = None,
        authorizer: Authorizer | None = None,
        bot_name: str = "Xero Sync",
        clock: Callable[[], datetime] = utcnow,
        solution_download_url: str = "",
        xero: XeroClient | None = None,
    ) -> None:
        self._store = store
        self._sync = sync
        self._sender = notifier.sender
        self._setup = setup
        self._authz = authorizer or Authorizer()
        self._bot_name = bot_name
        self._clock = clock
        self.tasks = BackgroundTasks()
        self._now = RunNow(store, sync, notifier, self.tasks, clock=clock)
        self._lifecycle = Lifecycle(store, sync, notifier, disconnector, self._authz, self.tasks)
        self._settings = SettingsForm(
            store, notifier.sender, self.tasks, self._authz, dataverse_factory, clock=clock
        )
        self._solution = SolutionUpgrades(dataverse_factory, notifier.sender, self.tasks)
        self._solution_download_url = solution_download_url
        # preview and why (bot.teams.insight): they read, never write; `xero` is the runs' own client.
        self._insight = Insight(
            store, notifier.sender, self.tasks, xero=xero, dataverse_factory=dataverse_factory
        )
        self._handlers: dict[str, Handler] = {
            "preview": self._preview,
            "upgrade": self._upgrade,
            "status": self._status,
            "now": self._run_now,
            "history": self._history,
            "settings": self._show_settings,
            "pause": self._pause,
            "resume": self._resume,
            "disconnect": self._ask_disconnect,
        }

    def register(self, router: Router) -> None:
        for name in CONNECTION_COMMANDS:
            router.on_command(name, partial(self._on_command, name))
        router.on_command("preview", partial(self._on_command, "preview"))
        router.on_command("why", self._on_why)
        # `connect` (and `cancel`) belong to the setup feature, which registers them (the router refuses
        # a second handler); a Retry card's "connect" still reaches the setup through `_on_connect`.
        router.on_command("help", self._on_help)
        router.on_help(self._on_help)
        for verb in VERB_COMMANDS:
            router.on_verb(verb.value, self._on_button)
        for verb in (CardVerb.RECONNECT_XERO, CardVerb.RECONNECT_DYNAMICS):
            router.on_verb(verb.value, self._on_reconnect)
        router.on_verb(CardVerb.PICK_CONNECTION.value, self._on_pick)
        router.on_verb(CardVerb.CONFIRM_DISCONNECT.value, self._lifecycle.on_disconnect_card)
        router.on_verb(CardVerb.CANCEL_DISCONNECT.value, self._lifecycle.on_disconnect_card)
        router.on_verb(CardVerb.RETRY_COMMAND.value, self._on_retry)

    async def on_settings_card(self, turn: Turn, value: dict[str, Any]) -> None:
        """Save / Cancel on the settings card of an existing connection (pass to SetupFeature.register)."""
        await self._settings.on_card(turn, value)

    async def close(self, grace: float = 10.0) -> None:
        await self.tasks.close(grace)

    # ---- entry points --------------------------------------------------------------------------

    async def _on_command(self, name: str, turn: Turn, args: list[str]) -> None:
        requester = Requester.from_turn(turn)
        here = await self._connections_here(requester)
        count: int | None = None
        name_arg = " ".join(args)
        if name == "history" and args and args[-1].isdigit() and _match(here, name_arg) is None:
            count, name_arg = int(args[-1]), " ".join(args[:-1])
        connection = await self._resolve(turn, here, name, name_arg)
        if connection is not None:
            await self._run(turn, requester, name, connection, count)

    async def _on_button(self, turn: Turn, value: dict[str, Any]) -> None:
        submit = parse_submit(value)  # ValidationFailed: the router says what was wrong
        command = VERB_COMMANDS[CardVerb(submit.verb)]
        connection_id = getattr(submit, "connection_id", None)
        if not isinstance(connection_id, str):
            raise ValidationFailed("This card is out of date. Type the command again to get a fresh one.")
        await self._run_by_id(turn, command, connection_id)

    async def _on_pick(self, turn: Turn, value: dict[str, Any]) -> None:
        submit = parse_submit(value)
        if not isinstance(submit, PickConnectionSubmit):
            raise ValidationFailed("This card is out of date. Type the command again to get a fresh one.")
        await self._run_by_id(turn, submit.command, submit.connection_id)

    async def _on_reconnect(self, turn: Turn, value: dict[str, Any]) -> None:
        submit = parse_submit(value)
        if not isinstance(submit, ReconnectXeroSubmit | ReconnectDynamicsSubmit):
            raise ValidationFailed("This card is out of date. Type the command again to get a fresh one.")
        provider = "xero" if isinstance(submit, ReconnectXeroSubmit) else "dynamics"
        requester = Requester.from_turn(turn)
        try:
            connection = await self._authz.require(
                await self._store.get_connection(submit.connection_id), requester, Permission.MANAGE
            )
        except Denied as denied:
            await turn.send_text(str(denied))
            return
        await self._setup.reconnect(turn, connection.id, provider)

    async def _on_retry(self, turn: Turn, value: dict[str, Any]) -> None:
        submit = parse_submit(value)
        if not isinstance(submit, RetryCommandSubmit):
            raise ValidationFailed("This card is out of date. Type the command again to get a fresh one.")
        parsed = parse_command(submit.command_text)
        if parsed.command is not None and parsed.command.name in self._handlers:
            await self._on_command(parsed.command.name, turn, parsed.args)
        elif parsed.command is not None and parsed.command.name == "why":
            await self._on_why(turn, parsed.args)
        elif parsed.command is not None and parsed.command.name == "connect":
            await self._on_connect(turn, [])
        else:
            await self._on_help(turn, [])

    async def _on_why(self, turn: Turn, args: list[str]) -> None:
        """`why <code or name>` searches every connection of this chat the requester may see."""
        here = await self._connections_here(Requester.from_turn(turn))
        if not here:
            await self._resolve(turn, here, "why", "")
            return
        await self._insight.why(turn, here, args)

    async def _preview(self, turn: Turn, _r: Requester, connection: Connection, _n: int | None) -> None:
        await self._insight.preview(turn, connection)

    async def _on_connect(self, turn: Turn, _args: list[str]) -> None:
        await self._setup.start_setup(turn)

    async def _on_help(self, turn: Turn, _args: list[str]) -> None:
        parsed = parse_command(turn.text)
        if parsed.command is None and parsed.args:
            unknown = " ".join(parsed.args)[:80]
            await turn.send_text(f"I don't know “{md_escape(unknown)}”. Here is what I can do:")
        await turn.send_card(
            render_help_card(HelpCardData(bot_name=self._bot_name, needs_mention=_needs_mention(turn)))
        )

    # ---- choosing the connection ---------------------------------------------------------------

    async def _connections_here(self, requester: Requester) -> list[Connection]:
        found = await self._store.list_connections(requester.conversation_key)
        return [c for c in found if self._authz.visible(c, requester)]

    async def _resolve(
        self, turn: Turn, here: list[Connection], command: str, name: str
    ) -> Connection | None:
        """The connection meant, or None after asking (a choice card) or explaining there is none."""
        if not here:
            await turn.send_card(
                message(
                    MessageTone.INFO,
                    "No connection in this chat yet",
                    "Say connect to connect a Xero organisation to Dynamics 365 here.",
                )
            )
            return None
        if name:
            match = _match(here, name)
            if match is not None:
                return match
            error = f"No connection in this chat is called “{name[:100]}”."
            await turn.send_card(_choice(command, here, error))
            return None
        if len(here) == 1:
            return here[0]
        await turn.send_card(_choice(command, here))
        return None

    async def _run_by_id(self, turn: Turn, command: str, connection_id: str) -> None:
        requester = Requester.from_turn(turn)
        connection = await self._store.get_connection(connection_id)
        if connection is None or not self._authz.visible(connection, requester):
            log.info("refused a card naming a connection not visible here", extra={"command": command})
            await turn.send_text(NOT_HERE)
            return
        await self._run(turn, requester, command, connection, None)

    async def _run(
        self, turn: Turn, requester: Requester, command: str, connection: Connection, count: int | None
    ) -> None:
        try:
            await self._authz.require(connection, requester, self._authz.permission_for(command))
        except Denied as denied:
            await turn.send_text(str(denied))
            return
        await self._handlers[command](turn, requester, connection, count)

    # ---- the commands --------------------------------------------------------------------------

    async def _pause(self, turn: Turn, requester: Requester, connection: Connection, _n: int | None) -> None:
        await self._lifecycle.pause(turn, requester, connection)

    async def _resume(self, turn: Turn, requester: Requester, connection: Connection, _n: int | None) -> None:
        await self._lifecycle.resume(turn, requester, connection)

    async def _ask_disconnect(
        self, turn: Turn, _r: Requester, connection: Connection, _n: int | None
    ) -> None:
        await self._lifecycle.ask_disconnect(turn, connection)

    async def _status(self, turn: Turn, _r: Requester, connection: Connection, _n: int | None) -> None:
        runs = await self._sync.history(connection.id, 1)
        data = StatusCardData.from_connection(connection, runs[0] if runs else None)
        update: dict[str, Any] = {"next_run_at": await self._sync.next_run_at(connection)}
        line = await self._solution.describe(connection)
        if line is not None:
            update |= {
                "solution_words": line.words,
                "solution_upgradable": line.upgradable,
                "solution_download_url": self._solution_download_url,
            }
        await turn.send_card(render_status_card(data.model_copy(update=update)))

    async def _upgrade(self, turn: Turn, _r: Requester, connection: Connection, _n: int | None) -> None:
        await self._solution.upgrade(turn, connection)

    async def _history(self, turn: Turn, _r: Requester, connection: Connection, count: int | None) -> None:
        n = max(1, min(count or DEFAULT_HISTORY, MAX_HISTORY_ROWS))
        runs = await self._sync.history(connection.id, n)
        await turn.send_card(render_history_card(HistoryCardData.from_runs(connection, runs)))

    async def _run_now(
        self, turn: Turn, requester: Requester, connection: Connection, _n: int | None
    ) -> None:
        await self._now.start(turn, requester, connection)

    async def _show_settings(self, turn: Turn, _r: Requester, connection: Connection, _n: int | None) -> None:
        await self._settings.show(turn, connection)


# ---- helpers ----------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _match(here: list[Connection], name: str) -> Connection | None:
    """By name (any case), else by Xero organisation, else the one connection whose name starts so."""
    wanted = _fold(name)
    if not wanted:
        return None
    for exact in (
        [c for c in here if _fold(c.name) == wanted],
        [c for c in here if _fold(c.xero_org_name) == wanted],
        [c for c in here if _fold(c.name).startswith(wanted)],
    ):
        if len(exact) == 1:
            return exact[0]
    return None


def _choice(command: str, here: list[Connection], error: str = "") -> dict[str, Any]:
    choices = tuple(
        Choice(
            value=c.id,
            title=f"{c.name} ({c.xero_org_name or 'Xero'} → {c.dataverse_env_name or 'Dynamics 365'})",
        )
        for c in here
    )
    return render_connection_choice_card(
        ConnectionChoiceCardData(command=command, connections=choices, error=error)
    )


def _needs_mention(turn: Turn) -> bool:
    return turn.conversation_type != "personal"
