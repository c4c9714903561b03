"""The chat's words for an on-demand run the sync core refused (`bot.sync.on_demand.Refusal`).

The core answers with a reason and the figures; the sentence a person reads is written here.
"""

from __future__ import annotations

from bot.storage.base import Connection
from bot.sync.on_demand import Refusal, RunRequest
from bot.sync.plans import plan_of

_FIXED = {
    Refusal.NOT_FOUND: "This connection no longer exists.",
    Refusal.PAUSED: "This connection is paused; resume it to sync.",
    Refusal.NEEDS_RECONNECTION: "This connection needs to be reconnected before it can sync.",
    Refusal.DISCONNECTED: "This connection is disconnected.",
}


def refusal_sentence(answer: RunRequest, connection: Connection) -> str:
    """Why the sync did not start, in one sentence ("" when it was not refused)."""
    reason = answer.refused_reason
    if reason is None:
        return ""
    if reason is Refusal.DAILY_ALLOWANCE:
        plan = plan_of(connection)
        return (
            f"The {plan.name} plan allows {answer.allowance} on-demand syncs a day and they "
            f"are used up; scheduled syncs go on ({plan.schedule_in_words})."
        )
    return _FIXED[reason]
