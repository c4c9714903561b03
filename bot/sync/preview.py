"""`sync preview`: what the next run would create, update and deactivate, read from Xero now.

The preview reads Xero exactly as the next run will (`bot.sync.pull`: the same switches, the same calls
through the same client and tenant limiter, incremental or full as the next run would be) and compares
with the fingerprints of what was last written (`bot.sync.fingerprint.plan_changes`). It writes nothing:
not to Dynamics, not to the fingerprints, not to the connection. Names of records that would be
deactivated are no longer in Xero, so they are read (only read) from Dynamics.

Xero's calls count against the organisation's limits (60 a minute, 5,000 a day), so previews are
limited per connection (`PREVIEW_LIMIT` per `PREVIEW_WINDOW`), with the store's shared counters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.errors import ConnectorError
from bot.storage.base import Connection, Store
from bot.sync.fingerprint import ChangeKind, plan_changes
from bot.sync.mapping import TABLE_OF, Entity, Row, inactive_row, key_column
from bot.sync.ports import Clock, DataverseFactory, SystemClock
from bot.sync.pull import SYNC_ORDER, read_xero, skipped_entities
from bot.sync.xero import XeroClient

log = logging.getLogger(__name__)

EXAMPLES = 10
PREVIEW_LIMIT = 3
PREVIEW_WINDOW = timedelta(minutes=10)
FULL_PASS_EVERY = timedelta(hours=24)  # as the engine's default: the next run's kind of accounts read


class PreviewLimited(Exception):
    """Too many previews of this connection lately."""

    def __init__(self, retry_after: timedelta) -> None:
        super().__init__(f"preview limit reached; try again in {int(retry_after.total_seconds())} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class EntityPreview:
    entity: str
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    # Up to EXAMPLES names per kind, in Xero key order (what a person recognises: code and name).
    examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deactivated


@dataclass(frozen=True)
class Preview:
    connection_id: str
    read_at: datetime
    full: bool  # accounts read whole (deleted ones can be seen) or only those changed since the last run
    entities: tuple[EntityPreview, ...]
    skipped: tuple[str, ...]
    xero_calls: int


def label_of(entity: Entity, row: Row) -> str:
    """How a record is named on a card: accounts by code and name, tax rates by name and tax type."""
    name = str(row.get("xdc_name") or "")
    if entity is Entity.ACCOUNTS and row.get("xdc_code"):
        return f"{row['xdc_code']} {name}".strip()
    if entity is Entity.TAX_RATES and row.get("xdc_xerotaxtype"):
        return f"{name} ({row['xdc_xerotaxtype']})"
    return name


class Previewer:
    def __init__(
        self,
        store: Store,
        xero: XeroClient,
        dataverse_factory: DataverseFactory | None = None,
        clock: Clock | None = None,
        *,
        full_pass_every: timedelta = FULL_PASS_EVERY,
    ) -> None:
        self._store = store
        self._xero = xero
        self._dataverse_factory = dataverse_factory
        self._clock = clock or SystemClock()
        self._full_pass_every = full_pass_every

    async def _admit(self, connection_id: str) -> None:
        window = int(PREVIEW_WINDOW.total_seconds())
        count = await self._store.incr_counter(f"preview:{connection_id}", window)
        if count > PREVIEW_LIMIT:
            raise PreviewLimited(PREVIEW_WINDOW)

    def _full(self, connection: Connection, now: datetime) -> bool:
        if connection.accounts_modified_since is None or connection.last_full_pass_at is None:
            return True
        return now - connection.last_full_pass_at >= self._full_pass_every

    async def preview(self, connection: Connection) -> Preview:
        """Raises PreviewLimited, or the Xero client's errors (AuthError, RateLimited, ...)."""
        await self._admit(connection.id)
        now = self._clock.now()
        full = self._full(connection, now)
        xero = self._xero.for_run()
        data = await read_xero(
            xero, connection, modified_since=None if full else connection.accounts_modified_since
        )
        cid = connection.dataverse_connector_row_id
        results: list[EntityPreview] = []
        for entity in SYNC_ORDER:
            if entity not in data.enabled:
                continue
            results.append(
                await self._entity(connection, entity, data.rows(entity, cid), data.complete(entity))
            )
        return Preview(
            connection_id=connection.id,
            read_at=now,
            full=full,
            entities=tuple(results),
            skipped=tuple(skipped_entities(connection)),
            xero_calls=xero.calls,
        )

    async def _entity(
        self, connection: Connection, entity: Entity, rows: dict[str, Row], complete: bool
    ) -> EntityPreview:
        table, cid = TABLE_OF[entity], connection.dataverse_connector_row_id
        previous = await self._store.get_fingerprints(connection.id, entity.value)
        changes = plan_changes(
            rows, previous, complete=complete, inactive=lambda k: inactive_row(table, cid, k)
        )
        examples: dict[str, list[str]] = {kind.value: [] for kind in ChangeKind}
        gone: list[str] = []
        for change in changes.changes:
            shown = examples[change.kind.value]
            if len(shown) >= EXAMPLES:
                continue
            if change.kind is ChangeKind.DEACTIVATE:
                gone.append(change.key)
                shown.append(change.key)
            else:
                shown.append(label_of(entity, change.row))
        if gone:
            names = await self._names_in_dynamics(connection, entity, gone)
            examples[ChangeKind.DEACTIVATE.value] = [names.get(key, key) for key in gone]
        return EntityPreview(
            entity=entity.value,
            created=changes.count(ChangeKind.CREATE),
            updated=changes.count(ChangeKind.UPDATE),
            deactivated=changes.count(ChangeKind.DEACTIVATE),
            unchanged=changes.unchanged,
            examples={kind: tuple(names) for kind, names in examples.items() if names},
        )

    async def _names_in_dynamics(
        self, connection: Connection, entity: Entity, keys: list[str]
    ) -> dict[str, str]:
        """Names of records Xero no longer has, as Dynamics still shows them (a read; never a write)."""
        if self._dataverse_factory is None or not connection.dataverse_connector_row_id:
            return {}
        table = TABLE_OF[entity]
        column = key_column(table)
        select = [column, "xdc_name"] + (["xdc_code"] if entity is Entity.ACCOUNTS else [])
        try:
            dv = self._dataverse_factory(connection)
            rows = await dv.rows_for_connector(table, connection.dataverse_connector_row_id, select)
        except ConnectorError as exc:
            log.info("preview could not read names from Dynamics: %s", type(exc).__name__)
            return {}
        wanted = set(keys)
        return {str(r[column]): label_of(entity, r) for r in rows if str(r.get(column)) in wanted}
