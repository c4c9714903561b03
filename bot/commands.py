"""The chat commands, as data: one table read by the router, the help card and the app manifest.

No botbuilder here: parsing a message's text is a pure function, so the Teams layer, the manifest
builder and the tests share it. Users type the commands with or without a leading slash and with or
without the word "sync" ("/sync status", "sync status", "status", "SYNC Status Acme").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    description: str  # one line, <= 128 characters: the Teams command menu shows it as is
    takes_name: bool  # accepts a connection name; without one the bot asks which connection
    # In the app's command menu (Teams allows 10 per list); every command works typed and is in help.
    in_menu: bool = True


# Ordered by how often a finance user needs them: the app manifest's command menu keeps this order.
COMMANDS: tuple[Command, ...] = (
    Command("status", "status [name]", "How the sync is doing: last run, next run, counts", True),
    Command("now", "now [name]", "Sync now instead of waiting for the next scheduled run", True),
    Command(
        "history", "history [name]", "The last runs: when, outcome, what changed, how long they took", True
    ),
    Command(
        "preview",
        "preview [name]",
        "What the next run would change, read from Xero now; nothing is written",
        True,
    ),
    Command(
        "why",
        "why <code or name>",
        "Where an account, tax rate, branding theme or tracking option stands in Dynamics 365, and why",
        False,
    ),
    Command(
        "settings",
        "settings [name]",
        "Change the name, plan, timezone, notifications or what syncs of a connection",
        True,
    ),
    Command("connect", "connect", "Connect a Xero organisation to Dynamics 365, step by step", False),
    Command("pause", "pause [name]", "Stop the scheduled runs until you resume them", True),
    # Out of the menu (it holds 10): only a paused connection needs it, and its cards carry a Resume button.
    Command("resume", "resume [name]", "Start the scheduled runs again", True, in_menu=False),
    Command(
        "disconnect",
        "disconnect [name]",
        "Stop syncing and forget the sign-ins; what is already in Dynamics 365 stays",
        True,
    ),
    Command("help", "help", "What I can do and how to ask", False),
)

# The app manifest's command menu: the table's order, the commands marked for it.
MENU: tuple[Command, ...] = tuple(c for c in COMMANDS if c.in_menu)

# Only meaningful while a setup or a form is open, so it stays out of the command menu.
CANCEL = Command("cancel", "cancel", "Stop the setup or form you are in", False)

COMMANDS_BY_NAME: dict[str, Command] = {c.name: c for c in (*COMMANDS, CANCEL)}

_PREFIX_WORD = "sync"


@dataclass(frozen=True)
class ParsedCommand:
    command: Command | None
    args: list[str] = field(default_factory=list)
    raw: str = ""

    @property
    def name_arg(self) -> str | None:
        """The arguments joined back into a connection name ("status Acme Ltd" -> "Acme Ltd")."""
        joined = " ".join(self.args)
        return joined or None


def parse_command(text: str) -> ParsedCommand:
    """Match a message against the table. Unknown or empty text gives `command=None`.

    The command word is matched case-insensitively; arguments keep their case (they are names).
    """
    tokens = text.split()
    if tokens and tokens[0].startswith("/"):
        tokens[0] = tokens[0][1:]
        if not tokens[0]:
            tokens = tokens[1:]
    if tokens and tokens[0].casefold() == _PREFIX_WORD:
        tokens = tokens[1:]
    if tokens and tokens[0].startswith("/"):
        # "sync /status" is a typo worth forgiving.
        tokens[0] = tokens[0][1:]
    if not tokens:
        return ParsedCommand(None, [], text)
    command = COMMANDS_BY_NAME.get(tokens[0].casefold())
    if command is None:
        return ParsedCommand(None, tokens, text)
    return ParsedCommand(command, tokens[1:], text)


def help_lines() -> list[str]:
    """One line per command, generated from the table, for the help card."""
    return [f"{c.usage}: {c.description}" for c in (*COMMANDS, CANCEL)]
