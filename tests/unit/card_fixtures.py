"""What the card cases are built from: fixed times, a hostile string, connections, runs, choices;
and the walkers the card tests read rendered cards with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.storage.base import (
    Connection,
    EntityCounts,
    RecordFailure,
    RunOutcome,
    RunRecord,
)
from cards import (
    Choice,
    SetupCardData,
    SetupStep,
    StepState,
)
from tests.support.cards import of_type, walk_card

T0 = datetime(2025, 3, 14, 9, 5, tzinfo=UTC)

EVIL = "[Pay here](https://evil.example) **urgent** <b>x</b>"

Json = dict[str, Any]


# --- the cards -------------------------------------------------------------------------------


def make_connection(**overrides: Any) -> Connection:
    values: dict[str, Any] = {
        "id": "conn-1",
        "name": "Acme Ltd",
        "teams_tenant_id": "tenant",
        "conversation_key": "msteams:conv",
        "created_by_aad_id": "user",
        "xero_tenant_id": "0f4e9a36-8f2a-4c43-9d0f-3a1c7b2e5d6f",
        "xero_org_name": "Acme Ltd (NZ)",
        "xero_timezone": "Pacific/Auckland",
        "dataverse_env_name": "Acme Sales",
        "dataverse_user_timezone": "Pacific/Auckland",
        "plan": "standard",
        "timezone": "Pacific/Auckland",
        "last_run_at": T0,
        "last_outcome": "succeeded",
        "next_run_at": T0 + timedelta(minutes=10),
        "xero_day_remaining": 4812,
    }
    values.update(overrides)
    return Connection(**values)


COUNTS = {
    "xdc_chartofaccounts": EntityCounts(created=3, updated=1, unchanged=40, deactivated=1),
    "xdc_taxtype": EntityCounts(unchanged=12, failed=2),
    "xdc_brandingtheme": EntityCounts(created=1),
}


def make_run(n: int = 0, **overrides: Any) -> RunRecord:
    values: dict[str, Any] = {
        "id": f"run-{n}",
        "connection_id": "conn-1",
        "trigger": "schedule",
        "started_at": T0 - timedelta(minutes=10 * n),
        "finished_at": T0 - timedelta(minutes=10 * n) + timedelta(seconds=42),
        "outcome": RunOutcome.SUCCEEDED,
        "counts": COUNTS,
        "xero_day_remaining": 4700,
    }
    values.update(overrides)
    return RunRecord(**values)


def make_failures(n: int) -> list[RecordFailure]:
    return [
        RecordFailure(
            entity="xdc_taxtype", key=f"TAX{i:03}", reason=f"Dataverse refused the row: column too long {i}"
        )
        for i in range(n)
    ]


ORGS = (
    Choice(value="0f4e9a36-8f2a-4c43-9d0f-3a1c7b2e5d6f", title="Acme Ltd (NZ)"),
    Choice(value="7a1b2c3d-0000-4000-8000-000000000002", title="Acme Pty (AU)"),
    Choice(value="7a1b2c3d-0000-4000-8000-000000000003", title=EVIL),
)
ENVS = tuple(
    Choice(value=f"0000000{i}-aaaa-4bbb-8ccc-dddddddddddd", title=f"Environment {i}") for i in range(7)
)
SETUP = SetupCardData(setup_id="setup-1")
XERO_DONE = SETUP.mark(SetupStep.XERO, StepState.DONE, "Acme Ltd (NZ)")

def card_actions(card: Json) -> list[Json]:
    return of_type(card, "Action.")


def card_inputs(card: Json) -> list[Json]:
    return [
        n
        for n in walk_card(card)
        if isinstance(n.get("type"), str) and n["type"].startswith("Input.") and n["type"] != "Input.Choice"
    ]


def markdown_texts(card: Json) -> list[str]:
    """Every string a client may read as markdown: TextBlock texts and fact values."""
    found: list[str] = []
    for node in walk_card(card):
        if node.get("type") == "TextBlock":
            found.append(node["text"])
        if node.get("type") == "FactSet":
            found += [fact["value"] for fact in node["facts"]]
    return found


def plain_texts(card: Json) -> str:
    return " ".join(n["text"] for n in walk_card(card) if n.get("type") == "TextRun")
