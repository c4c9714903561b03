"""Subscription plans are data: a schedule interval, a trial length and a daily allowance of on-demand runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.storage.base import Connection

DEFAULT_PLAN = "trial"


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    interval: timedelta
    on_demand_per_day: int
    trial_days: int | None = None

    @property
    def schedule_in_words(self) -> str:
        minutes = int(self.interval.total_seconds() // 60)
        every = "every hour" if minutes == 60 else f"every {minutes} minutes"
        extra = f", free for {self.trial_days} days" if self.trial_days else ""
        return f"{every}{extra}"


PLANS: tuple[Plan, ...] = (
    Plan("trial", "Trial", timedelta(hours=1), on_demand_per_day=5, trial_days=14),
    Plan("standard", "Standard", timedelta(minutes=10), on_demand_per_day=20),
    Plan("premium", "Premium", timedelta(minutes=5), on_demand_per_day=100),
)
PLANS_BY_ID = {p.id: p for p in PLANS}


def get_plan(plan_id: str) -> Plan:
    """The plan with that id; unknown ids raise KeyError (validate user input before)."""
    return PLANS_BY_ID[plan_id]


def plan_of(connection: Connection) -> Plan:
    """The connection's plan; an id no longer offered falls back to the default plan."""
    return PLANS_BY_ID.get(connection.plan) or PLANS_BY_ID[DEFAULT_PLAN]
