"""The setup's conversation as one table: where it can be, what moves it on, what each card button does.

Read it the way python-telegram-bot's `ConversationHandler(states={...}, fallbacks=[...])` is read:

- `STATES`: for each `Phase`, the card verbs that act in it and the action each one runs;
- `FALLBACKS`: verbs that act in every phase (cancel; the code box, while a sign-in waits for its code);
- `TRANSITIONS`: the events that move the setup (a sign-in link issued, the browser back, a failure, a
  choice to make, the environment checked) with the phases each may happen in and the phase it leads to.

A button not in the table for the current phase changes nothing (the flow says it belongs to another
step). The phase is assigned only by `enter`, which refuses a move the table does not declare: a step
that tried one would be a bug, and the table is where to look first. `bot/dialogs/README.md` draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.dialogs.model import Phase, Provider, SetupState
from cards.verbs import CardVerb


class Action(StrEnum):
    """What a card submit does; `SetupFlow` maps each to its handler."""

    CANCEL = "cancel"
    RETRY_XERO = "retry_xero"  # a new Xero sign-in link
    RETRY_DYNAMICS = "retry_dynamics"  # a new Dynamics sign-in link, or back to the environments
    CHOOSE_ORG = "choose_org"
    CHOOSE_ENV = "choose_env"
    CHECK_AGAIN = "check_again"  # the solution and privileges, once more
    INSTALL = "install"  # "Install it for me"
    KEEP_VERSION = "keep_version"  # carry on with the installed, older but compatible solution
    VERIFY = "verify"  # the code typed into the card's box
    SAVE_SETTINGS = "save_settings"  # the settings card: create the connection


class Event(StrEnum):
    """What happened to the setup; each one enters one phase (per provider where it says so)."""

    LINK = "link"  # a fresh sign-in link is on the card (start, reconnect, Try again, Xero chosen)
    SIGNED_IN = "signed_in"  # the browser came back signed in: the code is awaited
    FAILED = "failed"  # a sign-in that did not complete: the card offers Try again
    ORGS = "orgs"  # several Xero organisations: choose one
    ENVS = "envs"  # several Dynamics 365 environments: choose one
    BLOCKED = "blocked"  # the solution or a privilege is missing, or the check failed: Check again
    READY = "ready"  # environment checked: the settings card


def waiting_for_code(state: SetupState) -> bool:
    return state.verification is not None


@dataclass(frozen=True)
class Route:
    action: Action
    when: Callable[[SetupState], bool] | None = None  # a guard beyond the phase

    def allows(self, state: SetupState) -> bool:
        return self.when is None or self.when(state)


@dataclass(frozen=True)
class Transition:
    sources: frozenset[Phase]
    target: Phase


XERO_PHASES = frozenset(p for p in Phase if p.provider is Provider.XERO)
DYNAMICS_PHASES = frozenset(p for p in Phase if p.provider is Provider.DYNAMICS)  # SOLUTION_CHECK included
# Where the environment is checked from: a sign-in confirmed (with a code, or the Teams user's own
# account without one) and a single environment, a chosen one, Check again / Continue / an import's end.
_CHECKED_FROM = DYNAMICS_PHASES

_RETRY_XERO = {CardVerb.XERO_RETRY: Route(Action.RETRY_XERO)}
_RETRY_DYNAMICS = {CardVerb.DYNAMICS_RETRY: Route(Action.RETRY_DYNAMICS)}

STATES: Mapping[Phase, Mapping[CardVerb, Route]] = {
    Phase.XERO_SIGNIN: {**_RETRY_XERO},
    Phase.XERO_VERIFY: {**_RETRY_XERO},
    Phase.XERO_PICK_ORG: {**_RETRY_XERO, CardVerb.XERO_PICK_ORG: Route(Action.CHOOSE_ORG)},
    Phase.DYNAMICS_SIGNIN: {**_RETRY_DYNAMICS},
    Phase.DYNAMICS_VERIFY: {**_RETRY_DYNAMICS},
    Phase.DYNAMICS_PICK_ENV: {**_RETRY_DYNAMICS, CardVerb.DYNAMICS_PICK_ENV: Route(Action.CHOOSE_ENV)},
    Phase.SOLUTION_CHECK: {
        **_RETRY_DYNAMICS,
        CardVerb.SOLUTION_CHECK_AGAIN: Route(Action.CHECK_AGAIN),
        CardVerb.SOLUTION_INSTALL: Route(Action.INSTALL),
        CardVerb.SOLUTION_CONTINUE: Route(Action.KEEP_VERSION),
    },
    Phase.SETTINGS: {CardVerb.SETTINGS_SUBMIT: Route(Action.SAVE_SETTINGS)},
}

FALLBACKS: Mapping[CardVerb, Route] = {
    CardVerb.SETUP_CANCEL: Route(Action.CANCEL),
    CardVerb.SETTINGS_CANCEL: Route(Action.CANCEL),
    CardVerb.VERIFY_CODE: Route(Action.VERIFY, when=waiting_for_code),
}

TRANSITIONS: Mapping[tuple[Event, Provider | None], Transition] = {
    (Event.LINK, Provider.XERO): Transition(XERO_PHASES, Phase.XERO_SIGNIN),
    # Xero chosen (from the list, or the only organisation right after the code): on to Dynamics 365.
    (Event.LINK, Provider.DYNAMICS): Transition(
        DYNAMICS_PHASES | {Phase.XERO_VERIFY, Phase.XERO_PICK_ORG}, Phase.DYNAMICS_SIGNIN
    ),
    (Event.SIGNED_IN, Provider.XERO): Transition(frozenset({Phase.XERO_SIGNIN, Phase.XERO_VERIFY}), Phase.XERO_VERIFY),
    (Event.SIGNED_IN, Provider.DYNAMICS): Transition(
        frozenset({Phase.DYNAMICS_SIGNIN, Phase.DYNAMICS_VERIFY}), Phase.DYNAMICS_VERIFY
    ),
    (Event.FAILED, Provider.XERO): Transition(XERO_PHASES, Phase.XERO_SIGNIN),
    (Event.FAILED, Provider.DYNAMICS): Transition(DYNAMICS_PHASES, Phase.DYNAMICS_SIGNIN),
    (Event.ORGS, None): Transition(frozenset({Phase.XERO_VERIFY}), Phase.XERO_PICK_ORG),
    # Signed in (with or without a code), or Try again on the check while several environments exist.
    (Event.ENVS, None): Transition(
        frozenset({Phase.DYNAMICS_SIGNIN, Phase.DYNAMICS_VERIFY, Phase.SOLUTION_CHECK}), Phase.DYNAMICS_PICK_ENV
    ),
    (Event.BLOCKED, None): Transition(_CHECKED_FROM, Phase.SOLUTION_CHECK),
    (Event.READY, None): Transition(_CHECKED_FROM, Phase.SETTINGS),
}

# A new setup starts at Xero's sign-in; a reconnect at the sign-in of the provider it is about.
FIRST_PHASE: Mapping[Provider, Phase] = {p: TRANSITIONS[(Event.LINK, p)].target for p in Provider}


class UndeclaredTransition(RuntimeError):
    """A step tried to move the setup in a way `TRANSITIONS` does not declare."""


def route(state: SetupState, verb: CardVerb) -> Route | None:
    """What `verb` does in the setup's current phase; None when the button belongs to another step."""
    # As in ConversationHandler, the state's own handlers first, then the fallbacks (their verbs differ).
    found = STATES[state.phase].get(verb) or FALLBACKS.get(verb)
    return found if found is not None and found.allows(state) else None


def target(event: Event, provider: Provider | None = None) -> Transition:
    try:
        return TRANSITIONS[(event, provider)]
    except KeyError:
        raise UndeclaredTransition(f"{event.value} is not declared for {provider}") from None


def enter(state: SetupState, event: Event, provider: Provider | None = None, **changes: Any) -> SetupState:
    """The setup after `event`: its new phase from the table, with `changes` (and the idle clock restarted)."""
    transition = target(event, provider)
    if state.phase not in transition.sources:
        raise UndeclaredTransition(
            f"setup {state.setup_id}: {event.value} ({provider}) from {state.phase.value} is not declared"
        )
    return state.but(phase=transition.target, **changes)


def waits_for_signin(phase: Phase, provider: Provider) -> bool:
    """Whether a browser's sign-in for `provider` may still land: its link is out or its code awaited."""
    return phase in TRANSITIONS[(Event.SIGNED_IN, provider)].sources
