"""Routing as a table: commands by name, card actions by verb, with interceptors in front.

Matching (here) is separate from handling (bot.teams.commands, bot.dialogs): handlers receive a `Turn` and
already-split arguments or the raw submitted value, which they validate with the models in `cards.submits`.

Each command, verb and invoke verb has exactly one handler: a second registration raises `DuplicateRoute`
(two features claiming one name would otherwise depend on the order they were wired in, as teams.py's
router makes plain by refusing it too). A deliberate override says so with `replace=True`, and may only
replace something that is there.

Issue 14: each person may send `per_user` messages (commands, card submits) per window in a conversation;
beyond that they are told to slow down and nothing runs (one person cannot keep the bot busy for a whole
chat). An `Action.Execute` handled by a submit handler is answered with what that handler said, not a
blanket "Done." (a refusal reads as a refusal on the card).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ResourceResponse

from bot.commands import COMMANDS_BY_NAME, help_lines, parse_command
from bot.errors import ValidationFailed
from bot.teams.turn import Turn

log = logging.getLogger(__name__)

CommandHandler = Callable[[Turn, list[str]], Awaitable[None]]
SubmitHandler = Callable[[Turn, dict[str, Any]], Awaitable[None]]
# An invoke handler may answer with a card that replaces the one clicked (Action.Execute).
InvokeHandler = Callable[[Turn, dict[str, Any]], Awaitable[dict[str, Any] | None]]
# An interceptor sees every message first (an active setup dialog); True means it handled it.
Interceptor = Callable[[Turn], Awaitable[bool]]
H = TypeVar("H")
MAX_VERB_LENGTH = 64
# Messages one person may send in one conversation per window (a person typing or clicking is far below).
PER_USER_MESSAGES = 30
PER_USER_WINDOW_SECONDS = 60.0
_TRACKED_USERS = 10_000  # oldest forgotten beyond this: the limiter's memory is bounded too
SLOW_DOWN = "You're sending me messages faster than I can take them. Wait a minute, then try again."
# What an Action.Execute answer may quote of a handler's reply.
MAX_ANSWER_CHARS = 300


def submitted_verb(value: object) -> str | None:
    """The `verb` of a card submit, if the value has the shape our cards send."""
    if not isinstance(value, dict):
        return None
    verb = value.get("verb")
    if isinstance(verb, str) and 0 < len(verb) <= MAX_VERB_LENGTH:
        return verb
    return None


class Router:
    def __init__(
        self,
        *,
        per_user: int = PER_USER_MESSAGES,
        window_seconds: float = PER_USER_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_user = per_user
        self._window = window_seconds
        self._clock = clock
        self._recent: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._commands: dict[str, CommandHandler] = {}
        self._verbs: dict[str, SubmitHandler] = {}
        self._invokes: dict[str, InvokeHandler] = {}
        self._interceptors: list[Interceptor] = []
        self._help: CommandHandler = _send_help

    def on_command(self, name: str, handler: CommandHandler, *, replace: bool = False) -> None:
        if name not in COMMANDS_BY_NAME:
            raise ValueError(f"{name} is not in the command table (bot/commands.py)")
        _register(self._commands, "command", name, handler, replace)

    def on_help(self, handler: CommandHandler) -> None:
        self._help = handler

    def on_verb(self, verb: str, handler: SubmitHandler, *, replace: bool = False) -> None:
        _register(self._verbs, "card verb", verb, handler, replace)

    def on_invoke_verb(self, verb: str, handler: InvokeHandler, *, replace: bool = False) -> None:
        _register(self._invokes, "invoke verb", verb, handler, replace)

    @property
    def commands(self) -> frozenset[str]:
        """The command names that have a handler."""
        return frozenset(self._commands)

    @property
    def verbs(self) -> frozenset[str]:
        """The card verbs that have a submit handler."""
        return frozenset(self._verbs)

    def add_interceptor(self, interceptor: Interceptor) -> None:
        self._interceptors.append(interceptor)

    def _over_limit(self, turn: Turn) -> bool:
        """Counts this message; True if its sender is over the per-user limit in this conversation."""
        key = (turn.conversation_key, f"{turn.tenant_id}:{turn.user_id}")
        now = self._clock()
        sent = self._recent.pop(key, None) or deque()
        while sent and sent[0] <= now - self._window:
            sent.popleft()
        sent.append(now)
        self._recent[key] = sent  # most recent last
        while len(self._recent) > _TRACKED_USERS:
            self._recent.popitem(last=False)
        return len(sent) > self._per_user

    async def handle_message(self, turn: Turn) -> None:
        if self._over_limit(turn):
            log.info("a user is over the per-user message limit in a conversation")
            await turn.send_text(SLOW_DOWN)
            return
        for interceptor in self._interceptors:
            if await interceptor(turn):
                return
        value = turn.value
        if value is not None and not turn.text:
            await self._handle_submit(turn, value)
            return
        parsed = parse_command(turn.text)
        if parsed.command is None:
            await self._help(turn, [])
            return
        handler = self._commands.get(parsed.command.name)
        if handler is None:
            await self._help(turn, [])
            return
        await handler(turn, parsed.args)

    async def _handle_submit(self, turn: Turn, value: object) -> None:
        verb = submitted_verb(value)
        handler = self._verbs.get(verb) if verb else None
        if handler is None or not isinstance(value, dict):
            log.info("Ignored a card submit with an unknown verb")
            await turn.send_text("That button is no longer active. Type `sync help` to see what I can do.")
            return
        try:
            await handler(turn, value)
        except ValidationFailed as exc:
            await turn.send_text(f"⚠️ {exc}")

    async def handle_invoke(self, turn: Turn, verb: str, data: dict[str, Any]) -> dict[str, Any] | str | None:
        """A card that replaces the clicked one, or the text to answer with (what a submit handler said,
        e.g. a refusal), or None when nothing was said."""
        if self._over_limit(turn):
            return SLOW_DOWN
        handler = self._invokes.get(verb)
        if handler is not None:
            return await handler(turn, data)
        submit = self._verbs.get(verb)
        if submit is None:
            return "That button is no longer active. Type `sync help` to see what I can do."
        said: list[str] = []

        async def record(
            _context: TurnContext, activities: list[Activity], send: Callable[[], Awaitable[list[ResourceResponse]]]
        ) -> list[ResourceResponse]:
            said.extend(a.text for a in activities if getattr(a, "type", None) == "message" and a.text)
            return await send()

        turn.context.on_send_activities(record)
        await submit(turn, {**data, "verb": verb})
        if not said:
            return None
        last = said[-1]
        return last if len(last) <= MAX_ANSWER_CHARS else last[: MAX_ANSWER_CHARS - 1] + "…"


class DuplicateRoute(ValueError):
    """A second handler for a command or verb that already has one, without `replace=True`."""


def _register(table: dict[str, H], kind: str, key: str, handler: H, replace: bool) -> None:
    if replace and key not in table:
        raise DuplicateRoute(f"nothing to replace: no {kind} {key!r} is registered")
    if not replace and key in table:
        raise DuplicateRoute(f"the {kind} {key!r} already has a handler; pass replace=True to override it")
    table[key] = handler


async def _send_help(turn: Turn, _args: list[str]) -> None:
    await turn.send_text("Here is what I can do:\n\n" + "\n".join(f"- {line}" for line in help_lines()))
