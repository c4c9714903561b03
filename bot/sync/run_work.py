"""A run's working state, kept by the engine (`bot.sync.engine`) while the run goes; never stored as is."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.storage.base import Connection, EntityCounts, Provider, RecordFailure, RunRecord
from bot.sync.dataverse import DataverseClient
from bot.sync.failures import RunFailure
from bot.sync.mapping import Entity
from bot.sync.xero import XeroClient
from bot.sync.xero_models import Organisation

MAX_FAILURES_KEPT = 50


@dataclass
class RunWork:
    """A run's working state (never stored as is)."""

    connection: Connection
    record: RunRecord
    xero: XeroClient
    dv: DataverseClient | None = None
    organisation: Organisation | None = None
    connector_row_id: str = ""
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[RecordFailure] = field(default_factory=list)
    failure: RunFailure | None = None
    interrupted: bool = False
    modified_since: datetime | None = None
    # The stored Xero token blob when the run began (encrypted; every save makes a new one). If another
    # is stored when Xero's refusal is recorded, the refusal may concern a grant a reconnect replaced.
    xero_tokens_at_start: bytes | None = None

    def tally(self, entity: Entity, what: str, n: int = 1) -> None:
        counts = self.counts.setdefault(entity.value, {})
        counts[what] = counts.get(what, 0) + n

    def snapshot(self) -> RunRecord:
        return self.record.model_copy(
            update={
                "counts": {k: EntityCounts(**v) for k, v in self.counts.items()},
                "failures": self.failures[:MAX_FAILURES_KEPT],
                "xero_calls": self.xero.calls,
                "dataverse_calls": self.dv.calls if self.dv else 0,
            }
        )


def provider_of(name: str) -> Provider | None:
    """The provider a failure names ("" when it was no provider's doing)."""
    try:
        return Provider(name)
    except ValueError:
        return None
