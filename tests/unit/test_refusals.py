"""The sync core refuses with a reason; the Teams layer words it (bot.teams.refusals)."""

from __future__ import annotations

import pytest

from bot.storage.base import Connection
from bot.sync.on_demand import Refusal, RunRequest
from bot.teams.refusals import refusal_sentence


def connection(plan: str) -> Connection:
    return Connection(
        id="c1",
        name="Acme",
        teams_tenant_id="t",
        conversation_key="k",
        created_by_aad_id="u",
        xero_tenant_id="x",
        plan=plan,
    )


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        (Refusal.NOT_FOUND, "no longer exists"),
        (Refusal.PAUSED, "paused; resume it"),
        (Refusal.NEEDS_RECONNECTION, "needs to be reconnected"),
        (Refusal.DISCONNECTED, "is disconnected"),
    ],
)
def test_every_refusal_has_its_sentence(reason: Refusal, words: str) -> None:
    assert words in refusal_sentence(RunRequest(started=False, refused_reason=reason), connection("trial"))


def test_the_daily_allowance_names_the_plan_and_its_figures() -> None:
    answer = RunRequest(started=False, refused_reason=Refusal.DAILY_ALLOWANCE, used_today=20, allowance=20)
    text = refusal_sentence(answer, connection("standard"))
    assert text.startswith("The Standard plan allows 20 on-demand syncs a day and they are used up")
    assert "every 10 minutes" in text


def test_a_request_that_was_not_refused_has_no_sentence() -> None:
    assert refusal_sentence(RunRequest(started=True, run_id="r1"), connection("trial")) == ""


def test_the_sync_core_writes_no_chat_sentence_for_a_refusal() -> None:
    assert not hasattr(RunRequest(started=False), "message")
