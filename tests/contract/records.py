"""Records for the contract tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.storage.base import Connection, ConversationRef, RunOutcome, RunRecord

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def make_connection(
    cid: str = "c1", conversation: str = "msteams:19:abc", minutes: int = 0, **extra: object
) -> Connection:
    created = T0 + timedelta(minutes=minutes)
    return Connection(
        id=cid,
        name=f"Org {cid}",
        teams_tenant_id="tenant-1",
        conversation_key=conversation,
        created_by_aad_id="aad-1",
        xero_tenant_id=f"xero-{cid}",
        created_at=created,
        updated_at=created,
        **extra,
    )


def make_run(
    rid: str, cid: str = "c1", minutes: float = 0, outcome: RunOutcome = RunOutcome.SUCCEEDED
) -> RunRecord:
    return RunRecord(
        id=rid,
        connection_id=cid,
        trigger="schedule",
        started_at=T0 + timedelta(minutes=minutes),
        outcome=outcome,
    )


def make_ref(key: str = "msteams:19:abc") -> ConversationRef:
    return ConversationRef(
        key=key,
        teams_tenant_id="tenant-1",
        conversation_type="channel",
        reference={
            "conversation": {"id": "19:abc"},
            "serviceUrl": "https://smba.example/",
            "members": [],
            "bot": {},
        },
    )
