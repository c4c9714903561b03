"""The write path of a whole run against the documented Dataverse sandbox (issue 13's "done when").

A first run of 1,000 new accounts makes one UpsertMultiple per 1,000 changed rows per table and never
falls back to $batch; a run with nothing changed makes no data writes; the Connector and Settings rows'
ids come back although the service names upserted rows by their key, not their GUID.
"""

from __future__ import annotations

import re

from bot.storage.base import RunOutcome
from bot.sync.tables import CHART_OF_ACCOUNTS, CONNECTOR, CONNECTOR_SETTINGS, RunOutcomeChoice
from tests.integration.harness import Harness, synced_writes


def _paths(h: Harness, start: int, suffix: str) -> list[str]:
    return [r.path for r in h.dataverse.requests[start:] if r.path.endswith(suffix)]


async def test_a_first_run_of_1000_accounts_is_one_upsert_multiple_and_no_fallback(h: Harness) -> None:
    tenant = h.xero.generate_org("Thousand Ltd", accounts=1000)
    connection = await h.connect(tenant_id=tenant)
    start = len(h.dataverse.requests)

    run = await h.run(connection.id, "setup")

    assert run.counts["accounts"].created == 1000, run.error
    account_writes = _paths(h, start, f"/{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple")
    assert len(account_writes) == 1
    assert _paths(h, start, "/$batch") == []
    assert len(await h.rows(CHART_OF_ACCOUNTS, connection)) == 1000

    mark = len(h.dataverse.requests)
    again = await h.run(connection.id)
    assert all(c.changed == 0 for c in again.counts.values())
    assert synced_writes(h.dataverse.requests[mark:]) == []


async def test_connector_and_settings_rows_are_found_by_their_returned_ids(h: Harness) -> None:
    connection = await h.connect()

    saved = await h.connection(connection.id)
    connectors = h.dataverse.rows("contosoprod", CONNECTOR.entity_set)
    settings = h.dataverse.rows("contosoprod", CONNECTOR_SETTINGS.entity_set)

    assert saved.dataverse_connector_row_id in {r["xdc_connectorid"] for r in connectors}
    assert [s["_xdc_connectorid_value"] for s in settings] == [saved.dataverse_connector_row_id]


async def test_the_connector_row_tells_a_person_in_dynamics_what_the_last_run_did(h: Harness) -> None:
    """The last-outcome column is read by people in Dynamics 365: words (the bot's and the worker's
    composition pass `cards.failure_words.connector_outcome_words`), not the sync core's data line."""
    connection = await h.connect()
    await h.run(connection.id, "setup")
    row = await h.connector_row(connection)
    assert re.fullmatch(r"\d+ changes? written\.", row["xdc_lastoutcomedetail"]), row["xdc_lastoutcomedetail"]

    # Xero keeps answering 503 for the organisation: the run fails, and the row says why in words.
    h.clock.advance(60)
    h.xero.fail_next(20, 503, path_prefix="/api.xro/2.0/Organisation")
    failed = await h.run(connection.id)
    assert failed.outcome == RunOutcome.FAILED
    row = await h.connector_row(connection)
    assert row["xdc_lastoutcomedetail"] == (
        "Xero did not answer after several tries (503); the next run tries again."
    )
    assert row["xdc_lastoutcome"] == int(RunOutcomeChoice.FAILED)
