"""`sync why <code or name>`: where one record stands, and why.

Finding it: an account by code or name, a tax rate by name or tax type, a branding theme or a tracking
option by name, among the rows the connection wrote to Dynamics (read, never written). A record whose
write failed may not be in Dynamics at all, or be there under its old name: then the Xero lists of the
entities with a recorded failure are read (one call each, through the same client and limits as a run).

Explaining it (typed facts; `cards.insight` turns them into words): its row in Dynamics (present,
removed from Xero, status), its last write and the run that made it (`bot.sync.ledger`), whether runs
since left it alone as unchanged (its fingerprint matches), its last failure if that is newer than
its last write, and whether its entity is switched off.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.errors import ConnectorError
from bot.storage.base import Connection, RunRecord, Store
from bot.sync.ledger import Mark, load_ledger
from bot.sync.mapping import TABLE_OF, Entity, Row, key_column
from bot.sync.ports import DataverseFactory
from bot.sync.preview import label_of
from bot.sync.pull import enabled_entities, read_xero
from bot.sync.tables import RecordState
from bot.sync.xero import XeroClient

log = logging.getLogger(__name__)

# What a person may ask about, in the order candidates are listed.
SEARCHED: tuple[Entity, ...] = (
    Entity.ACCOUNTS,
    Entity.TAX_RATES,
    Entity.BRANDING_THEMES,
    Entity.TRACKING_OPTIONS,
)
_MATCH_COLUMNS: dict[Entity, tuple[str, ...]] = {
    Entity.ACCOUNTS: ("xdc_code", "xdc_name"),
    Entity.TAX_RATES: ("xdc_name", "xdc_xerotaxtype"),
    Entity.BRANDING_THEMES: ("xdc_name",),
    Entity.TRACKING_OPTIONS: ("xdc_name",),
}
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class Candidate:
    connection_id: str
    entity: Entity
    key: str  # Xero's id
    label: str
    row: Row | None = None  # its row in Dynamics, if it has one


@dataclass(frozen=True)
class Explanation:
    candidate: Candidate
    in_dynamics: bool
    removed_from_xero: bool  # the row is marked inactive
    xero_status: str
    switched_off: bool
    last_written: Mark | None
    written_by: RunRecord | None
    failure: Mark | None  # the last failed write, if no write succeeded since
    unchanged_since: bool  # a later run read it and left it alone (fingerprint matched)
    fingerprint: bool  # the next run compares with what was last written


def _fold(text: object) -> str:
    return " ".join(str(text or "").split()).casefold()


def _matches(entity: Entity, row: Row, wanted: str) -> bool:
    return any(_fold(row.get(column)) == wanted for column in _MATCH_COLUMNS[entity])


class WhyFinder:
    def __init__(
        self, store: Store, xero: XeroClient | None, dataverse_factory: DataverseFactory | None
    ) -> None:
        self._store = store
        self._xero = xero
        self._dataverse_factory = dataverse_factory

    async def find(self, connection: Connection, query: str) -> list[Candidate]:
        """The records called `query` (any case); from Xero only when Dynamics has none and a write failed."""
        wanted = _fold(query)
        if not wanted:
            return []
        found = await self._in_dynamics(connection, wanted)
        if not found:
            found = await self._failed_in_xero(connection, wanted)
        return found[:MAX_CANDIDATES]

    async def _in_dynamics(self, connection: Connection, wanted: str) -> list[Candidate]:
        if self._dataverse_factory is None or not connection.dataverse_connector_row_id:
            return []
        dv = self._dataverse_factory(connection)
        found: list[Candidate] = []
        for entity in SEARCHED:
            table = TABLE_OF[entity]
            select = sorted(
                {key_column(table), "xdc_name", "xdc_status", "xdc_recordstate", *_MATCH_COLUMNS[entity]}
            )
            try:
                rows = await dv.rows_for_connector(table, connection.dataverse_connector_row_id, select)
            except ConnectorError as exc:
                log.info("why could not read %s: %s", table.logical_name, type(exc).__name__)
                continue
            for row in rows:
                if _matches(entity, row, wanted):
                    key = str(row.get(key_column(table)))
                    found.append(Candidate(connection.id, entity, key, label_of(entity, row), row))
        return found

    async def _failed_in_xero(self, connection: Connection, wanted: str) -> list[Candidate]:
        failing = [e for e in SEARCHED if (await load_ledger(self._store, connection.id, e.value)).failed]
        if not failing or self._xero is None:
            return []
        on = frozenset(failing) | (
            {Entity.TRACKING_CATEGORIES} if Entity.TRACKING_OPTIONS in failing else set()
        )
        data = await read_xero(self._xero.for_run(), connection, modified_since=None, enabled=on)
        cid = connection.dataverse_connector_row_id
        found: list[Candidate] = []
        for entity in failing:
            for key, row in data.rows(entity, cid).items():
                if _matches(entity, row, wanted):
                    found.append(Candidate(connection.id, entity, key, label_of(entity, row)))
        return found

    async def by_key(self, connection: Connection, entity: Entity, key: str) -> Candidate:
        """A candidate named by a choice card (entity and Xero id); its row if Dynamics has it."""
        row: Row | None = None
        if self._dataverse_factory is not None and connection.dataverse_connector_row_id:
            table = TABLE_OF[entity]
            select = sorted(
                {key_column(table), "xdc_name", "xdc_status", "xdc_recordstate", *_MATCH_COLUMNS[entity]}
            )
            try:
                rows = await self._dataverse_factory(connection).rows_for_connector(
                    table, connection.dataverse_connector_row_id, select
                )
                row = next((r for r in rows if str(r.get(key_column(table))) == key), None)
            except ConnectorError as exc:
                log.info("why could not read %s: %s", table.logical_name, type(exc).__name__)
        return Candidate(connection.id, entity, key, label_of(entity, row) if row else key, row)

    async def explain(self, connection: Connection, candidate: Candidate) -> Explanation:
        entity, key, row = candidate.entity, candidate.key, candidate.row
        ledger = await load_ledger(self._store, connection.id, entity.value)
        written, failed = ledger.written.get(key), ledger.failed.get(key)
        if failed is not None and written is not None and written.at > failed.at:
            failed = None
        fingerprints = await self._store.get_fingerprints(connection.id, entity.value)
        written_by = await self._store.get_run(written.run_id) if written else None
        unchanged_since = False
        if written is not None and failed is None and key in fingerprints:
            later = [
                r
                for r in await self._store.list_runs(connection.id, limit=20)
                if r.started_at > written.at and entity.value in r.counts
            ]
            unchanged_since = bool(later)
        state = row.get("xdc_recordstate") if row else None
        return Explanation(
            candidate=candidate,
            in_dynamics=row is not None,
            removed_from_xero=state == RecordState.INACTIVE,
            xero_status=str(row.get("xdc_status") or "") if row else "",
            switched_off=entity not in enabled_entities(connection),
            last_written=written,
            written_by=written_by,
            failure=failed,
            unchanged_since=unchanged_since,
            fingerprint=key in fingerprints,
        )
