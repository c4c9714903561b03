"""A failed run's provider and attention travel as types: the status card picks its reconnect button
from them (never from the error's words), and records stored before the fields existed still load."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.errors import AuthError, PermissionDenied
from bot.storage.base import Connection, ConnectionStatus, Provider, RunOutcome, RunRecord, RunTrigger
from bot.sync.failures import describe
from cards import StatusCardData, render_status_card

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_connection(**update: Any) -> Connection:
    base = Connection(
        id="c1",
        name="Acme",
        teams_tenant_id="t",
        conversation_key="msteams:a:1",
        created_by_aad_id="u",
        xero_tenant_id="x",
        dataverse_env_name="Acme Sales",
        last_run_at=T0,
    )
    return base.model_copy(update=update)


def make_run(**update: Any) -> RunRecord:
    return RunRecord(id="r1", connection_id="c1", trigger=RunTrigger.SCHEDULE, started_at=T0, **update)


def verbs(card: dict[str, object]) -> list[str]:
    actions = card.get("actions")
    assert isinstance(actions, list)
    return [str(a["data"]["verb"]) for a in actions]


@pytest.mark.parametrize(
    ("error", "button", "not_button"),
    [
        (
            AuthError("invalid_grant", reconnect_required=True, provider="dynamics"),
            "reconnect_dynamics",
            "reconnect_xero",
        ),
        (
            AuthError("invalid_grant", reconnect_required=True, provider="xero"),
            "reconnect_xero",
            "reconnect_dynamics",
        ),
        (
            PermissionDenied("AuthenticationUnsuccessful", provider="xero"),
            "reconnect_xero",
            "reconnect_dynamics",
        ),
    ],
)
def test_the_status_card_offers_the_sign_in_the_run_asked_for(
    error: Exception, button: str, not_button: str
) -> None:
    failure = describe(error)
    assert failure.status is ConnectionStatus.NEEDS_RECONNECTION
    # The connection and the run as the engine leaves them (bot.sync.engine._finish).
    connection = make_connection(status=ConnectionStatus.NEEDS_RECONNECTION, status_reason=failure.kind)
    run = make_run(
        outcome=RunOutcome.FAILED,
        failure_kind=failure.kind,
        attention=failure.attention,
        failed_provider=Provider(failure.provider),
    )
    card = render_status_card(StatusCardData.from_connection(connection, run))
    assert button in verbs(card)
    assert not_button not in verbs(card)


def test_a_run_record_stored_before_the_typed_fields_loads() -> None:
    stored = {
        "id": "r1",
        "connection_id": "c1",
        "trigger": "schedule",
        "started_at": "2026-01-01T00:00:00Z",
        "outcome": "failed",
        "error": "The Dynamics 365 sign-in is no longer valid.",
    }
    run = RunRecord.model_validate_json(json.dumps(stored))
    assert run.trigger is RunTrigger.SCHEDULE
    assert run.failed_provider is None
    assert run.attention is None
    again = RunRecord.model_validate_json(run.model_dump_json())
    assert again == run
