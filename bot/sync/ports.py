"""The sync core's ports: what it needs from the outside, as protocols and the types that cross them.

The Teams side implements `Notifier` (bot.teams.notifier); tests implement it with a recorder. Every
time the core reads comes from one `Clock` and every wait goes through a `Sleep` (both from
`bot.sync.clock`), so tests pass their own. The core imports nothing from botbuilder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.storage.base import AttentionReason, Connection, FailureKind, RunRecord, RunStage
from bot.sync.clock import Clock, Sleep, SystemClock, asyncio_sleep

if TYPE_CHECKING:
    from bot.sync.dataverse import DataverseClient

__all__ = [
    "AttentionDetail",
    "AttentionReason",
    "Clock",
    "DataverseFactory",
    "Notifier",
    "NullNotifier",
    "OutcomeWords",
    "Sleep",
    "SystemClock",
    "asyncio_sleep",
]

# Builds the Dataverse client of one connection (its environment, its sign-in).
DataverseFactory = Callable[[Connection], "DataverseClient"]

# The line a finished run leaves on the connection's Connector row in Dynamics 365 (people read it there):
# the compositions pass `cards.failure_words.connector_outcome_words`; without one the line is data.
OutcomeWords = Callable[[RunRecord], str]


@dataclass(frozen=True)
class AttentionDetail:
    """What the sync core saw when it asks for attention, as data: `bot.teams` puts it in words.

    The failure travels as its kind and data (`error`: the words of a run stored before kinds); the other fields are
    set only for the reasons they belong to."""

    error: str = ""  # the failure's words, for a run stored before `failure_kind` existed
    failure_kind: FailureKind | None = None  # what stopped the run, with its provider, detail and code
    provider: str = ""
    detail: str = ""
    code: str = ""
    failed_runs: int | None = None  # REPEATED_FAILURES: how many in a row
    calls_left: int | None = None  # XERO_DAILY_LIMIT: Xero calls left today
    timezone_from: str = ""  # TIMEZONE_MISMATCH: Xero's zone before and after
    timezone_to: str = ""


@runtime_checkable
class Notifier(Protocol):
    async def run_started(self, connection: Connection, run: RunRecord) -> None: ...

    async def run_progress(self, connection: Connection, run: RunRecord, stage: RunStage) -> None: ...

    async def run_finished(self, connection: Connection, run: RunRecord) -> None: ...

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: AttentionDetail) -> None: ...


class NullNotifier:
    """Tells nobody (workers without a Teams side configured, benchmarks)."""

    async def run_started(self, connection: Connection, run: RunRecord) -> None:
        return None

    async def run_progress(self, connection: Connection, run: RunRecord, stage: RunStage) -> None:
        return None

    async def run_finished(self, connection: Connection, run: RunRecord) -> None:
        return None

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: AttentionDetail) -> None:
        return None
