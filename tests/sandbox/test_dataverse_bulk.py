"""CreateMultiple, UpdateMultiple and UpsertMultiple: @odata.type on every target, all or nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.sync.tables import CHART_OF_ACCOUNTS, CONNECTOR, TAX_TYPE
from tests.sandbox.conftest_ms import MsSandboxes, guid_of, running_ms_sandboxes

PROD = "contosoprod"
ACCOUNT_TYPE = "Microsoft.Dynamics.CRM.xdc_chartofaccounts"


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def _connector(ms: MsSandboxes) -> str:
    response = await ms.dv("POST", PROD, CONNECTOR.entity_set, json={
        "xdc_name": "Demo", "xdc_connectionid": "conn-1", "xdc_xerotenantid": "t",
    })
    return guid_of(response.headers["OData-EntityId"])


def _target(connector: str, number: int, name: str | None = None) -> dict[str, Any]:
    return {
        "@odata.type": ACCOUNT_TYPE,
        "@odata.id": f"{CHART_OF_ACCOUNTS.entity_set}(_xdc_connectorid_value={connector},xdc_xeroaccountid='acc-{number}')",
        "xdc_name": name or f"Account {number}",
        "xdc_code": str(number)[:10],
    }


async def test_upsert_multiple_of_a_thousand_rows_then_again_updates_them(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    action = f"{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple"
    started = time.monotonic()

    first = await ms.dv("POST", PROD, action, json={"Targets": [_target(connector, n) for n in range(1000)]})
    second = await ms.dv("POST", PROD, action, json={"Targets": [_target(connector, n, "Renamed") for n in range(1000)]})

    assert first.status_code == second.status_code == 204
    assert first.content == b""
    rows = ms.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)
    assert len(rows) == 1000
    assert {row["xdc_name"] for row in rows} == {"Renamed"}
    assert all(row["_xdc_connectorid_value"] == connector for row in rows)
    assert ms.dataverse.write_count == 1 + 2000
    assert time.monotonic() - started < 10


async def test_upsert_multiple_needs_the_key_in_odata_id_not_in_the_columns(ms: MsSandboxes) -> None:
    # The documented targets name their record with @odata.id; key columns alone do not identify it.
    connector = await _connector(ms)
    target = {
        "@odata.type": "Microsoft.Dynamics.CRM.xdc_taxtype",
        "xdc_ConnectorId@odata.bind": f"/{CONNECTOR.entity_set}({connector})",
        "xdc_xerotaxtype": "INPUT2",
        "xdc_name": "GST on expenses",
        "xdc_effectiverate": 15,
    }
    action = f"{TAX_TYPE.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple"

    refused = await ms.dv("POST", PROD, action, json={"Targets": [target]})
    assert refused.status_code == 400
    assert "@odata.id" in refused.json()["error"]["message"]

    keyed = {
        "@odata.type": "Microsoft.Dynamics.CRM.xdc_taxtype",
        "@odata.id": f"{TAX_TYPE.entity_set}(_xdc_connectorid_value={connector},xdc_xerotaxtype='INPUT2')",
        "xdc_name": "GST on expenses",
        "xdc_effectiverate": 15,
    }
    for _ in range(2):
        response = await ms.dv("POST", PROD, action, json={"Targets": [keyed]})
        assert response.status_code == 204, response.text
    rows = ms.dataverse.rows(PROD, TAX_TYPE.entity_set)
    assert len(rows) == 1
    assert rows[0]["xdc_effectiverate"] == 15
    assert (rows[0]["xdc_xerotaxtype"], rows[0]["_xdc_connectorid_value"]) == ("INPUT2", connector)


async def test_one_bad_target_rolls_back_the_whole_call(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    targets = [_target(connector, n) for n in range(5)]
    targets[3]["xdc_code"] = "x" * 11
    action = f"{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple"

    response = await ms.dv("POST", PROD, action, json={"Targets": targets})

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044331"
    assert ms.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set) == []


async def test_every_target_needs_its_odata_type(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    target = _target(connector, 1)
    del target["@odata.type"]

    response = await ms.dv(
        "POST", PROD, f"{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [target]}
    )

    assert response.status_code == 400
    assert "@odata.type" in response.json()["error"]["message"]


async def test_create_multiple_returns_ids_and_update_multiple_needs_existing_rows(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    created = await ms.dv("POST", PROD, f"{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.CreateMultiple", json={
        "Targets": [
            {"@odata.type": ACCOUNT_TYPE, "xdc_ConnectorId@odata.bind": f"/{CONNECTOR.entity_set}({connector})",
             "xdc_xeroaccountid": f"a{n}", "xdc_name": "n"}
            for n in range(3)
        ],
    })
    assert created.status_code == 200
    ids = created.json()["Ids"]
    assert len(ids) == 3
    assert created.json()["@odata.context"].endswith("#Microsoft.Dynamics.CRM.CreateMultipleResponse")

    update = f"{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.UpdateMultiple"
    targets = [{"@odata.type": ACCOUNT_TYPE, "xdc_chartofaccountsid": row_id, "xdc_name": "updated"} for row_id in ids]
    assert (await ms.dv("POST", PROD, update, json={"Targets": targets})).status_code == 204
    assert {row["xdc_name"] for row in ms.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)} == {"updated"}

    missing = [*targets, {"@odata.type": ACCOUNT_TYPE, "xdc_chartofaccountsid": "00000000-0000-0000-0000-0000000000ff", "xdc_name": "x"}]
    for target in missing:
        target["xdc_name"] = "second"
    failed = await ms.dv("POST", PROD, update, json={"Targets": missing})
    assert failed.status_code == 404
    assert {row["xdc_name"] for row in ms.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)} == {"updated"}
