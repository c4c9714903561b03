"""The connection's own records in Dynamics: one Connector row and one Settings row per connection.

Both are written by alternate key (`xdc_connectionid` for the Connector, the connector lookup for the
Settings), so writing them again after a retry or a second setup updates the same rows. They hold
configuration and the last run's outcome, never financial data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.storage.base import Connection, ConnectionStatus, RunOutcome, RunRecord
from bot.sync.dataverse import DataverseClient
from bot.sync.mapping import connector_bind, dv_datetime
from bot.sync.tables import CONNECTOR, CONNECTOR_SETTINGS, ConnectorStatus, RunOutcomeChoice, Table

_STATUS: dict[ConnectionStatus, ConnectorStatus] = {
    ConnectionStatus.ACTIVE: ConnectorStatus.ACTIVE,
    ConnectionStatus.PAUSED: ConnectorStatus.PAUSED,
    ConnectionStatus.NEEDS_RECONNECTION: ConnectorStatus.NEEDS_RECONNECTION,
    ConnectionStatus.DISCONNECTED: ConnectorStatus.DISCONNECTED,
}

_OUTCOME: dict[str, RunOutcomeChoice] = {
    RunOutcome.SUCCEEDED: RunOutcomeChoice.SUCCEEDED,
    RunOutcome.PARTIAL: RunOutcomeChoice.PARTIAL,
    RunOutcome.FAILED: RunOutcomeChoice.FAILED,
}


def _cut(table: Table, column: str, value: str) -> str:
    limit = table.column(column).max_length
    return value[:limit] if limit else value


def outcome_data(run: RunRecord) -> str:
    """The Connector row's last-outcome line as data, for a sync core composed without words (benchmarks,
    tests): `failed: <kind> [<provider>, <code>]: <scrubbed detail>` or `changed=3 failed=0`. The bot and
    the worker pass `cards.failure_words.connector_outcome_words` (`SyncEngine(outcome_words=...)`)."""
    if run.outcome == RunOutcome.FAILED:
        if run.failure_kind is None:  # stored before the kinds existed: its text
            return run.error or "failed"
        where = ", ".join(part for part in (run.failed_provider or "", run.failure_code) if part)
        text = f"failed: {run.failure_kind.value}" + (f" [{where}]" if where else "")
        return text + (f": {run.failure_detail}" if run.failure_detail else "")
    changed = sum(c.changed for c in run.counts.values())
    failed = sum(c.failed for c in run.counts.values())
    return f"changed={changed} failed={failed}"


def connector_row(connection: Connection) -> dict[str, Any]:
    """The Connector row's configuration columns (the run columns are written by `update_connector_run`)."""
    row: dict[str, Any] = {
        "xdc_name": _cut(CONNECTOR, "xdc_name", connection.name or connection.xero_org_name or connection.id),
        "xdc_connectionid": connection.id,
        "xdc_xeroorganisationname": _cut(CONNECTOR, "xdc_xeroorganisationname", connection.xero_org_name),
        "xdc_xerotenantid": connection.xero_tenant_id,
        "xdc_plan": connection.plan,
        "xdc_timezone": connection.timezone,
        "xdc_status": int(_STATUS[connection.status]),
    }
    if connection.last_outcome in _OUTCOME:
        row["xdc_lastoutcome"] = int(_OUTCOME[connection.last_outcome])
    if connection.last_run_at is not None:
        row["xdc_lastrunutc"] = dv_datetime(connection.last_run_at)
    if connection.next_run_at is not None:
        row["xdc_nextrunutc"] = dv_datetime(connection.next_run_at)
    return row


def _connector_key(connection: Connection) -> dict[str, str]:
    return {"xdc_connectionid": connection.id}


async def upsert_connector_record(dv: DataverseClient, connection: Connection) -> str:
    """Create or update the connection's Connector row; returns its id."""
    return await dv.upsert(CONNECTOR, _connector_key(connection), connector_row(connection))


async def upsert_settings_record(
    dv: DataverseClient, connection: Connection, connector_row_id: str, *, is_default: bool = True
) -> str:
    """Create or update the connection's Settings row (one per connector); returns its id.

    `is_default`: whether this is the environment's default connection (pass False when another
    connection to the same environment already is). The sync switches come from the connection."""
    row: dict[str, Any] = {
        "xdc_name": _cut(CONNECTOR_SETTINGS, "xdc_name", connection.name or connection.id),
        CONNECTOR_SETTINGS.lookup_bind("xdc_connectorid"): connector_bind(connector_row_id),
        "xdc_plan": connection.plan,
        "xdc_timezone": connection.timezone,
        "xdc_notifymode": str(connection.notify_mode),
        "xdc_isdefault": is_default,
        "xdc_syncaccounts": connection.sync_accounts,
        "xdc_synctaxrates": connection.sync_tax_rates,
        "xdc_syncbrandingthemes": connection.sync_branding_themes,
        "xdc_synctrackingcategories": connection.sync_tracking_categories,
    }
    return await dv.upsert(CONNECTOR_SETTINGS, {"xdc_connectorid": connector_row_id}, row)


async def clear_other_defaults(dv: DataverseClient, connector_row_id: str) -> list[str]:
    """Clear `xdc_isdefault` on every other Settings row of the environment; returns their connector ids.

    Read from Dynamics rather than from our store: the environment may hold connections another
    conversation (or an earlier install) set up, and exactly one default per environment is the rule."""
    rows = await dv.find_rows(CONNECTOR_SETTINGS, "xdc_isdefault eq true", ["_xdc_connectorid_value"])
    cleared: list[str] = []
    for row in rows:
        other = str(row.get("_xdc_connectorid_value") or "")
        if not other or other.lower() == connector_row_id.lower():
            continue
        await dv.upsert(CONNECTOR_SETTINGS, {"xdc_connectorid": other}, {"xdc_isdefault": False})
        cleared.append(other)
    return cleared


async def update_connector_run(
    dv: DataverseClient, connection: Connection, run: RunRecord, next_run: datetime | None, detail: str
) -> str:
    """Write the last run (time, outcome, `detail`: its one line) and the next run on the Connector row.

    Only the run's own columns: the run started from a snapshot of the connection, and writing its name,
    plan or timezone too would undo a settings change saved while the run was going."""
    row: dict[str, Any] = {"xdc_xerotenantid": connection.xero_tenant_id}
    row["xdc_lastrunutc"] = dv_datetime(run.started_at)
    row["xdc_nextrunutc"] = dv_datetime(next_run)
    if run.outcome in _OUTCOME:
        row["xdc_lastoutcome"] = int(_OUTCOME[run.outcome])
    row["xdc_lastoutcomedetail"] = _cut(CONNECTOR, "xdc_lastoutcomedetail", detail)
    return await dv.upsert(CONNECTOR, _connector_key(connection), row)


async def update_connector_status(dv: DataverseClient, connection: Connection) -> str:
    """Write the connection's status (paused, resumed, needs reconnection) and next run."""
    row = connector_row(connection)
    row["xdc_nextrunutc"] = dv_datetime(connection.next_run_at)
    return await dv.upsert(CONNECTOR, _connector_key(connection), row)


async def mark_connector_disconnected(dv: DataverseClient, connection: Connection) -> str:
    """The connection was removed: the row stays (its history is the customer's), marked disconnected."""
    row = connector_row(connection)
    row["xdc_status"] = int(ConnectorStatus.DISCONNECTED)
    row["xdc_nextrunutc"] = None
    return await dv.upsert(CONNECTOR, _connector_key(connection), row)
