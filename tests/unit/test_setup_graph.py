"""The setup's table (bot/dialogs/graph.py) and the dialog that routes card submits through it."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
from botbuilder.core import MemoryStorage, TurnContext
from botbuilder.core.adapters import TestAdapter
from botbuilder.schema import Activity

from bot.dialogs import graph
from bot.dialogs.feature import SETUP_VERBS, SHARED_VERBS
from bot.dialogs.graph import (
    FALLBACKS,
    FIRST_PHASE,
    STATES,
    TRANSITIONS,
    Action,
    Event,
    UndeclaredTransition,
    enter,
)
from bot.dialogs.model import Phase, Provider, SetupState, Verification
from bot.dialogs.session import OFF_ROUTE, CardInput, Sessions
from bot.storage.base import utcnow
from bot.teams.turn import Turn
from cards.submits import parse_submit
from cards.verbs import CardVerb


def _state(phase: Phase, **changes: Any) -> SetupState:
    return SetupState(
        setup_id="setup-1",
        connection_id="conn-1",
        owner_id="aad-alice",
        tenant_id="t1",
        conversation_key="msteams:a:conv",
        reference={},
        phase=phase,
        **changes,
    )


WAITING = Verification(provider=Provider.XERO, code_hash="x", expires_at=utcnow())


def _before(state: SetupState, verb: CardVerb) -> str | None:
    """The if/elif of flow.py before the table, restated: what each verb did in each phase."""
    phase = state.phase
    rules = [
        (verb in (CardVerb.SETUP_CANCEL, CardVerb.SETTINGS_CANCEL), "cancel"),
        (verb is CardVerb.XERO_RETRY and phase.provider is Provider.XERO, "retry_xero"),
        (verb is CardVerb.DYNAMICS_RETRY and phase.provider is Provider.DYNAMICS, "retry_dynamics"),
        (verb is CardVerb.XERO_PICK_ORG and phase is Phase.XERO_PICK_ORG, "choose_org"),
        (verb is CardVerb.DYNAMICS_PICK_ENV and phase is Phase.DYNAMICS_PICK_ENV, "choose_env"),
        (verb is CardVerb.SOLUTION_CHECK_AGAIN and phase is Phase.SOLUTION_CHECK, "check_again"),
        (verb is CardVerb.SOLUTION_INSTALL and phase is Phase.SOLUTION_CHECK, "install"),
        (verb is CardVerb.SOLUTION_CONTINUE and phase is Phase.SOLUTION_CHECK, "keep_version"),
        (verb is CardVerb.VERIFY_CODE and state.verification is not None, "verify"),
        (verb is CardVerb.SETTINGS_SUBMIT and phase is Phase.SETTINGS, "save_settings"),
    ]
    return next((action for matches, action in rules if matches), None)


@pytest.mark.parametrize("phase", list(Phase))
@pytest.mark.parametrize("waiting", [False, True])
def test_the_table_routes_every_setup_verb_as_the_old_dispatch_did(phase: Phase, waiting: bool) -> None:
    state = _state(phase, verification=WAITING if waiting else None)
    for verb in (*SETUP_VERBS, *SHARED_VERBS):
        found = graph.route(state, verb)
        assert (found.action.value if found else None) == _before(state, verb), (phase, verb, waiting)


def test_the_table_is_complete() -> None:
    assert set(STATES) == set(Phase)
    used = {r.action for routes in STATES.values() for r in routes.values()} | {r.action for r in FALLBACKS.values()}
    assert used == set(Action)
    verbs = {v for routes in STATES.values() for v in routes}
    assert not verbs & set(FALLBACKS), "a verb is either a phase's or a fallback, never both"
    assert verbs | set(FALLBACKS) == set(SETUP_VERBS) | set(SHARED_VERBS)


def test_every_phase_is_reachable_and_the_settings_from_each_start() -> None:
    edges = {(s, t.target) for t in TRANSITIONS.values() for s in t.sources}
    for start in FIRST_PHASE.values():
        seen, todo = {start}, deque([start])
        while todo:
            here = todo.popleft()
            for source, target in edges:
                if source is here and target not in seen:
                    seen.add(target)
                    todo.append(target)
        assert Phase.SETTINGS in seen
        if start is Phase.XERO_SIGNIN:
            assert seen == set(Phase)


def test_enter_sets_the_declared_phase_and_refuses_the_rest() -> None:
    moved = enter(_state(Phase.XERO_VERIFY), Event.ORGS, problem="")
    assert moved.phase is Phase.XERO_PICK_ORG
    assert enter(_state(Phase.XERO_PICK_ORG), Event.LINK, Provider.DYNAMICS).phase is Phase.DYNAMICS_SIGNIN
    with pytest.raises(UndeclaredTransition):
        enter(_state(Phase.SETTINGS), Event.FAILED, Provider.XERO)
    with pytest.raises(UndeclaredTransition):
        enter(_state(Phase.XERO_SIGNIN), Event.READY)
    with pytest.raises(UndeclaredTransition):
        enter(_state(Phase.XERO_SIGNIN), Event.ORGS, Provider.XERO)  # not a per-provider event


def test_a_sign_in_may_land_only_while_its_link_or_code_is_out() -> None:
    for provider in Provider:
        open_for = {p for p in Phase if graph.waits_for_signin(p, provider)}
        assert open_for == {FIRST_PHASE[provider], enter(_state(FIRST_PHASE[provider]), Event.SIGNED_IN, provider).phase}


# -- the dialog drives card submits through the table ------------------------------------------------


def _context() -> TurnContext:
    activity = Activity().deserialize(
        {
            "type": "message",
            "id": "1",
            "channelId": "msteams",
            "serviceUrl": "http://127.0.0.1:1/",
            "from": {"id": "29:alice", "name": "Alice", "aadObjectId": "aad-alice"},
            "conversation": {"id": "a:conv", "conversationType": "personal", "tenantId": "t1"},
            "recipient": {"id": "28:bot", "name": "Bot"},
            "channelData": {"tenant": {"id": "t1"}},
        }
    )
    return TurnContext(TestAdapter(), activity)


async def test_the_dialog_runs_the_action_the_table_names() -> None:
    ran: list[tuple[Action, Phase]] = []
    cancelled: list[str] = []

    def record(action: Action) -> Any:
        async def handler(card: CardInput, state: SetupState) -> None:
            ran.append((action, state.phase))
            if action is Action.CHOOSE_ORG:
                card.session.save(enter(state, Event.LINK, Provider.DYNAMICS))

        return handler

    async def on_cancel(state: SetupState) -> None:
        cancelled.append(state.setup_id)

    storage = MemoryStorage()
    sessions = Sessions(storage, on_cancel, {a: record(a) for a in Action})
    context = _context()
    async with sessions.open(context) as session:
        await session.begin(_state(Phase.XERO_PICK_ORG))

    pick = {"verb": "xero_pick_org", "setup_id": "setup-1", "xero_tenant_id": "org-2"}
    async with sessions.open(context) as session:
        await session.continue_with(Turn(context), parse_submit(pick), pick)
    assert ran == [(Action.CHOOSE_ORG, Phase.XERO_PICK_ORG)]
    assert (await sessions.peek(context)).phase is Phase.DYNAMICS_SIGNIN  # type: ignore[union-attr]

    # The same button again is off the table now: nothing runs, the person is told.
    adapter = context.adapter
    async with sessions.open(context) as session:
        await session.continue_with(Turn(context), parse_submit(pick), pick)
    assert ran == [(Action.CHOOSE_ORG, Phase.XERO_PICK_ORG)]
    assert [a.text for a in adapter.activity_buffer] == [OFF_ROUTE]


def test_the_dialog_needs_a_handler_for_every_action() -> None:
    async def handler(card: CardInput, state: SetupState) -> None:
        return None

    async def on_cancel(state: SetupState) -> None:
        return None

    with pytest.raises(ValueError, match="no handler"):
        Sessions(MemoryStorage(), on_cancel, {Action.CANCEL: handler})


def test_the_readme_shows_the_table_as_it_is() -> None:
    readme = (Path(__file__).parents[2] / "bot" / "dialogs" / "README.md").read_text(encoding="utf-8")
    shown: dict[str, set[str]] = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0].startswith("`") and all(p.strip().startswith("`") for p in cells[1].split(",")):
            for phase in cells[0].split(","):
                shown[phase.strip(" `")] = {v.strip(" `") for v in cells[1].split(",")}
    assert shown == {p.value: {v.value for v in STATES[p]} for p in Phase}
