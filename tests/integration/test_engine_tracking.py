"""Tracking categories and their options, Xero -> Dynamics, against the three sandboxes."""

from __future__ import annotations

from typing import Any

import pytest

from bot.storage.base import RunOutcome
from bot.sync.tables import TRACKING_CATEGORY, TRACKING_OPTION, RecordState
from sandbox.xero.seed import NZ_TENANT_ID
from tests.integration.harness import Harness, synced_writes

pytestmark = pytest.mark.timeout(60)

CATEGORY_COLUMNS = [
    "xdc_trackingcategoryid",
    "xdc_xerotrackingcategoryid",
    "xdc_name",
    "xdc_status",
    "xdc_recordstate",
]
OPTION_COLUMNS = [
    "xdc_xerotrackingoptionid",
    "xdc_name",
    "xdc_status",
    "xdc_recordstate",
    "_xdc_trackingcategoryid_value",
]


def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in rows}


def xero_category(h: Harness, name: str) -> dict[str, Any]:
    return next(c for c in h.xero.tracking_categories(NZ_TENANT_ID) if c["Name"] == name)


async def test_first_run_writes_categories_and_options_with_their_category(h: Harness) -> None:
    connection = await h.connect()
    run = await h.run(connection.id, "setup")
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    xero = h.xero.tracking_categories(NZ_TENANT_ID)
    assert len(xero) == 2
    options = [(c["TrackingCategoryID"], o) for c in xero for o in c["Options"]]
    assert any(o["Status"] == "ARCHIVED" for _, o in options), "the seed has an archived option"
    assert run.counts["tracking_categories"].created == 2
    assert run.counts["tracking_options"].created == len(options) == 5

    categories = by(
        await h.rows(TRACKING_CATEGORY, connection, CATEGORY_COLUMNS), "xdc_xerotrackingcategoryid"
    )
    assert {k: (v["xdc_name"], v["xdc_status"]) for k, v in categories.items()} == {
        c["TrackingCategoryID"]: (c["Name"], c["Status"]) for c in xero
    }
    rows = by(await h.rows(TRACKING_OPTION, connection, OPTION_COLUMNS), "xdc_xerotrackingoptionid")
    for category_id, option in options:
        row = rows[option["TrackingOptionID"]]
        assert row["xdc_name"] == option["Name"]
        assert row["xdc_status"] == option["Status"]
        assert row["xdc_recordstate"] == RecordState.ACTIVE
        # The lookup points at the category's own row in Dynamics.
        assert row["_xdc_trackingcategoryid_value"] == categories[category_id]["xdc_trackingcategoryid"]


async def test_renaming_an_option_updates_one_row(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    region = xero_category(h, "Region")
    north = next(o for o in region["Options"] if o["Name"] == "North")
    h.xero.rename_tracking_option(
        NZ_TENANT_ID, region["TrackingCategoryID"], north["TrackingOptionID"], "Northland"
    )
    mark = len(h.dataverse.requests)
    run = await h.run(connection.id)
    assert run.counts["tracking_options"].updated == 1
    assert sum(c.changed for c in run.counts.values()) == 1
    writes = synced_writes(h.dataverse.requests[mark:])
    assert len(writes) == 1
    assert writes[0].writes == 1
    rows = by(await h.rows(TRACKING_OPTION, connection, OPTION_COLUMNS), "xdc_xerotrackingoptionid")
    assert rows[north["TrackingOptionID"]]["xdc_name"] == "Northland"


async def test_deleting_a_category_deactivates_it_and_its_options(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    region = xero_category(h, "Region")
    h.xero.delete_tracking_category(NZ_TENANT_ID, region["TrackingCategoryID"])
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    assert run.counts["tracking_categories"].deactivated == 1
    assert run.counts["tracking_options"].deactivated == len(region["Options"]) == 3
    categories = by(
        await h.rows(TRACKING_CATEGORY, connection, CATEGORY_COLUMNS), "xdc_xerotrackingcategoryid"
    )
    assert categories[region["TrackingCategoryID"]]["xdc_recordstate"] == RecordState.INACTIVE
    assert (
        categories[xero_category(h, "Department")["TrackingCategoryID"]]["xdc_recordstate"]
        == RecordState.ACTIVE
    )
    rows = by(await h.rows(TRACKING_OPTION, connection, OPTION_COLUMNS), "xdc_xerotrackingoptionid")
    for option in region["Options"]:
        assert rows[option["TrackingOptionID"]]["xdc_recordstate"] == RecordState.INACTIVE
    # Deactivated, never deleted; a third run has nothing more to do.
    again = await h.run(connection.id)
    assert sum(c.changed for c in again.counts.values()) == 0


async def test_archiving_an_option_updates_its_status_and_a_new_option_is_created(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    department = xero_category(h, "Department")
    sales = next(o for o in department["Options"] if o["Name"] == "Sales")
    h.xero.archive_tracking_option(NZ_TENANT_ID, department["TrackingCategoryID"], sales["TrackingOptionID"])
    added = h.xero.add_tracking_option(NZ_TENANT_ID, department["TrackingCategoryID"], Name="Finance")
    run = await h.run(connection.id)
    assert (run.counts["tracking_options"].updated, run.counts["tracking_options"].created) == (1, 1)
    rows = by(await h.rows(TRACKING_OPTION, connection, OPTION_COLUMNS), "xdc_xerotrackingoptionid")
    assert rows[sales["TrackingOptionID"]]["xdc_status"] == "ARCHIVED"
    assert rows[sales["TrackingOptionID"]]["xdc_recordstate"] == RecordState.ACTIVE  # still in Xero
    assert rows[added]["xdc_name"] == "Finance"
