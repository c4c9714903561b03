"""Mapping tracking categories and options: keys, the category bind by alternate key, what stays in the body."""

from __future__ import annotations

from bot.sync.dataverse_batch import without_key
from bot.sync.mapping import category_bind, map_tracking, row_key
from bot.sync.tables import TRACKING_CATEGORY, TRACKING_OPTION, RecordState
from bot.sync.xero_models import TrackingCategory

CID = "7d1b1a0e-0000-4000-8000-000000000001"
RAW = {
    "Name": "Region",
    "Status": "ACTIVE",
    "TrackingCategoryID": "c0000000-0000-4000-8000-00000000000a",
    "Options": [
        {"TrackingOptionID": "0a000000-0000-4000-8000-000000000001", "Name": "North", "Status": "ACTIVE"},
        {"TrackingOptionID": "0a000000-0000-4000-8000-000000000002", "Name": "Central", "Status": "ARCHIVED"},
    ],
}


def test_categories_and_options_map_to_their_tables() -> None:
    categories, options = map_tracking([TrackingCategory.model_validate(RAW)], CID)
    assert list(categories) == [RAW["TrackingCategoryID"]]
    category = categories[RAW["TrackingCategoryID"]]
    assert category["xdc_name"] == "Region"
    assert category["xdc_recordstate"] == RecordState.ACTIVE
    assert category["xdc_ConnectorId@odata.bind"] == f"/xdc_connectors({CID})"
    assert set(options) == {o["TrackingOptionID"] for o in RAW["Options"]}  # type: ignore[union-attr, index]
    central = options["0a000000-0000-4000-8000-000000000002"]
    assert (central["xdc_name"], central["xdc_status"]) == ("Central", "ARCHIVED")
    # The option's category is bound by the category's alternate key (connector + Xero id), by its
    # navigation property's schema name.
    assert central["xdc_TrackingCategoryId@odata.bind"] == (
        f"/xdc_trackingcategories(_xdc_connectorid_value={CID},"
        f"xdc_xerotrackingcategoryid='{RAW['TrackingCategoryID']}')"
    )
    assert category_bind(CID, str(RAW["TrackingCategoryID"])) == central["xdc_TrackingCategoryId@odata.bind"]


def test_the_category_lookup_stays_in_the_upsert_body() -> None:
    _, options = map_tracking([TrackingCategory.model_validate(RAW)], CID)
    key = row_key(TRACKING_OPTION, CID, "0a000000-0000-4000-8000-000000000001")
    body = without_key(TRACKING_OPTION, key, options["0a000000-0000-4000-8000-000000000001"])
    assert "xdc_TrackingCategoryId@odata.bind" in body  # not part of the alternate key
    assert "xdc_ConnectorId@odata.bind" not in body
    assert "xdc_xerotrackingoptionid" not in body
    assert TRACKING_CATEGORY.alternate_key == ("xdc_connectorid", "xdc_xerotrackingcategoryid")


def test_long_names_are_cut_to_the_column() -> None:
    raw = {**RAW, "Name": "R" * 150, "Options": []}
    categories, _ = map_tracking([TrackingCategory.model_validate(raw)], CID)
    assert categories[str(RAW["TrackingCategoryID"])]["xdc_name"] == "R" * 100
