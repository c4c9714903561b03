"""The Dataverse Web API of one environment: auth, WhoAmI, our tables, upserts, conditions, queries, privileges."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from bot.sync.tables import (
    CHART_OF_ACCOUNTS,
    CONNECTOR,
    CONNECTOR_USER_ROLE,
    SOLUTION_UNIQUE_NAME,
    TAX_TYPE,
    Privilege,
    privilege_name,
)
from sandbox.entra import ALICE, CAROL, DAVE
from tests.sandbox.conftest_ms import MsSandboxes, guid_of, running_ms_sandboxes

PROD = "contosoprod"


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def _connector(ms: MsSandboxes, connection_id: str = "conn-1") -> str:
    response = await ms.dv("POST", PROD, CONNECTOR.entity_set, json={
        "xdc_name": "Demo Company (NZ)", "xdc_connectionid": connection_id, "xdc_xerotenantid": "tenant-1",
    })
    assert response.status_code == 204, response.text
    return guid_of(response.headers["OData-EntityId"])


def _account(connector: str, account_id: str, name: str = "Sales") -> dict[str, Any]:
    return {
        "xdc_ConnectorId@odata.bind": f"/{CONNECTOR.entity_set}({connector})",
        "xdc_xeroaccountid": account_id,
        "xdc_name": name,
        "xdc_code": "200",
    }


async def test_who_am_i_answers_with_three_ids_and_the_parallelism_hint(ms: MsSandboxes) -> None:
    response = await ms.dv("GET", PROD, "WhoAmI")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"@odata.context", "BusinessUnitId", "UserId", "OrganizationId"}
    assert body["@odata.context"] == f"{ms.api(PROD)}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
    assert int(response.headers["x-ms-dop-hint"]) >= 1
    assert response.headers["OData-Version"] == "4.0"


async def test_a_token_for_another_audience_gets_401_with_the_authority_challenge(ms: MsSandboxes) -> None:
    gds_token = await ms.token(ALICE.upn)  # audience: Global Discovery, not the environment

    wrong = await ms.http.get(f"{ms.api(PROD)}/WhoAmI", headers={"Authorization": f"Bearer {gds_token}"})
    missing = await ms.http.get(f"{ms.api(PROD)}/WhoAmI")

    for response in (wrong, missing):
        assert response.status_code == 401
        challenge = response.headers["WWW-Authenticate"]
        assert challenge.startswith(f"Bearer authorization_uri={ms.entra_url}/")
        assert challenge.endswith(f"/oauth2/authorize, resource_id={ms.env_url(PROD)}/")
    assert "audience" in wrong.json()["error"]["message"]
    other = await ms.http.get(
        f"{ms.api('contosotest')}/WhoAmI",
        headers={"Authorization": f"Bearer {await ms.token(ALICE.upn, ms.env_url(PROD))}"},
    )
    assert other.status_code == 401


async def test_users_not_provisioned_get_403(ms: MsSandboxes) -> None:
    response = await ms.dv("GET", PROD, "WhoAmI", upn=DAVE.upn)

    assert response.status_code == 403
    assert response.json()["error"] == {"code": "0x80072560", "message": "The user is not a member of the organization."}


async def test_create_read_update_delete_with_representation_and_etags(ms: MsSandboxes) -> None:
    created = await ms.dv(
        "POST", PROD, CONNECTOR.entity_set, headers={"Prefer": "return=representation"},
        json={"xdc_name": "A", "xdc_connectionid": "c-1", "xdc_xerotenantid": "t", "xdc_status": 100000000},
    )
    assert created.status_code == 201
    row = created.json()
    connector = row["xdc_connectorid"]
    assert row["@odata.etag"].startswith('W/"')
    assert created.headers["OData-EntityId"] == f"{ms.api(PROD)}/{CONNECTOR.entity_set}({connector})"

    fetched = await ms.dv("GET", PROD, f"{CONNECTOR.entity_set}({connector})?$select=xdc_name,xdc_status")
    assert fetched.json()["@odata.context"] == f"{ms.api(PROD)}/$metadata#{CONNECTOR.entity_set}(xdc_name,xdc_status)/$entity"
    assert set(fetched.json()) == {"@odata.context", "@odata.etag", "xdc_name", "xdc_status", "xdc_connectorid"}
    unchanged = await ms.dv("GET", PROD, f"{CONNECTOR.entity_set}({connector})", headers={"If-None-Match": row["@odata.etag"]})
    assert unchanged.status_code == 304

    stale = await ms.dv("PATCH", PROD, f"{CONNECTOR.entity_set}({connector})", headers={"If-Match": 'W/"1"'}, json={"xdc_name": "B"})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "0x80060882"
    updated = await ms.dv(
        "PATCH", PROD, f"{CONNECTOR.entity_set}({connector})",
        headers={"If-Match": row["@odata.etag"], "Prefer": "return=representation"}, json={"xdc_name": "B"},
    )
    assert updated.status_code == 200
    assert updated.json()["xdc_name"] == "B"
    assert updated.json()["@odata.etag"] != row["@odata.etag"]

    # alice's role has no Delete privilege on our tables.
    denied = await ms.dv("DELETE", PROD, f"{CONNECTOR.entity_set}({connector})")
    assert denied.status_code == 403
    assert "prvDeletexdc_Connector" in denied.json()["error"]["message"]
    ms.dataverse.grant_role(PROD, ALICE.upn, "System Administrator")
    assert (await ms.dv("DELETE", PROD, f"{CONNECTOR.entity_set}({connector})")).status_code == 204
    gone = await ms.dv("GET", PROD, f"{CONNECTOR.entity_set}({connector})")
    assert gone.status_code == 404
    assert gone.json()["error"]["code"] == "0x80040217"


async def test_upsert_by_alternate_key_twice_makes_one_row(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    key = f"{CHART_OF_ACCOUNTS.entity_set}(_xdc_connectorid_value={connector},xdc_xeroaccountid='acc-1')"
    body = {"xdc_name": "Sales", "xdc_code": "200"}

    first = await ms.dv("PATCH", PROD, key, json=body)
    second = await ms.dv("PATCH", PROD, key, json={**body, "xdc_name": "Sales revenue", "xdc_xeroaccountid": "ignored"})

    assert first.status_code == second.status_code == 204
    assert first.headers["OData-EntityId"] == second.headers["OData-EntityId"]
    rows = ms.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)
    assert len(rows) == 1
    assert rows[0]["xdc_name"] == "Sales revenue"
    assert rows[0]["xdc_xeroaccountid"] == "acc-1"  # key columns in the body are ignored on update
    assert rows[0]["_xdc_connectorid_value"] == connector
    created = await ms.dv("PATCH", PROD, key.replace("acc-1", "acc-2"), headers={"Prefer": "return=representation"}, json=body)
    assert created.status_code == 201
    assert created.json()["xdc_xeroaccountid"] == "acc-2"


async def test_conditional_upserts(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    key = f"{TAX_TYPE.entity_set}(_xdc_connectorid_value={connector},xdc_xerotaxtype='OUTPUT2')"

    update_only = await ms.dv("PATCH", PROD, key, headers={"If-Match": "*"}, json={"xdc_name": "GST"})
    assert update_only.status_code == 404
    assert update_only.json()["error"]["code"] == "0x80040217"
    assert ms.dataverse.rows(PROD, TAX_TYPE.entity_set) == []

    create_only = await ms.dv("PATCH", PROD, key, headers={"If-None-Match": "*"}, json={"xdc_name": "GST"})
    assert create_only.status_code == 204
    again = await ms.dv("PATCH", PROD, key, headers={"If-None-Match": "*"}, json={"xdc_name": "GST on income"})
    assert again.status_code == 412
    assert again.json()["error"]["message"] == "A record with matching key values already exists."
    update = await ms.dv("PATCH", PROD, key, headers={"If-Match": "*"}, json={"xdc_name": "GST on income"})
    assert update.status_code == 204
    assert ms.dataverse.rows(PROD, TAX_TYPE.entity_set)[0]["xdc_name"] == "GST on income"
    duplicate = await ms.dv("POST", PROD, TAX_TYPE.entity_set, json={
        "xdc_ConnectorId@odata.bind": f"/{CONNECTOR.entity_set}({connector})", "xdc_xerotaxtype": "output2",
        "xdc_name": "dup",
    })
    assert duplicate.status_code == 412
    assert duplicate.json()["error"]["code"] == "0x80060892"


async def test_columns_are_validated_like_dataverse(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    set_ = CHART_OF_ACCOUNTS.entity_set

    unknown = await ms.dv("POST", PROD, set_, json={**_account(connector, "a"), "xdc_colour": "red"})
    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "0x80048d19"
    assert "The property 'xdc_colour' does not exist on type 'Microsoft.Dynamics.CRM.xdc_chartofaccounts'" in unknown.json()["error"]["message"]
    too_long = await ms.dv("POST", PROD, set_, json={**_account(connector, "a"), "xdc_code": "x" * 11})
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "0x80044331"
    wrong_type = await ms.dv("POST", PROD, set_, json={**_account(connector, "a"), "xdc_showinexpenseclaims": "yes"})
    assert wrong_type.status_code == 400
    bad_choice = await ms.dv("POST", PROD, set_, json={**_account(connector, "a"), "xdc_recordstate": 7})
    assert bad_choice.status_code == 400
    assert bad_choice.json()["error"]["code"] == "0x8004431A"
    lookup_value = await ms.dv("POST", PROD, set_, json={"_xdc_connectorid_value": connector})
    assert lookup_value.status_code == 400
    missing_target = await ms.dv("POST", PROD, set_, json=_account("00000000-0000-0000-0000-000000000001", "a"))
    assert missing_target.status_code == 404
    assert ms.dataverse.rows(PROD, set_) == []


async def test_unknown_entity_sets_and_tables_of_a_missing_solution_are_404(ms: MsSandboxes) -> None:
    unknown = await ms.dv("GET", PROD, "accounts_typo")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {"code": "0x8006088a", "message": "Resource not found for the segment 'accounts_typo'."}

    not_installed = await ms.dv("GET", "contosotest", TAX_TYPE.entity_set)
    assert not_installed.status_code == 404
    solutions = await ms.dv("GET", "contosotest", f"solutions?$filter=uniquename eq '{SOLUTION_UNIQUE_NAME}'&$select=uniquename,version")
    assert solutions.json()["value"] == []
    installed = await ms.dv("GET", PROD, f"solutions?$filter=uniquename eq '{SOLUTION_UNIQUE_NAME}'&$select=uniquename,version")
    assert [row["uniquename"] for row in installed.json()["value"]] == [SOLUTION_UNIQUE_NAME]

    ms.dataverse.install_solution("contosotest")
    assert (await ms.dv("GET", "contosotest", TAX_TYPE.entity_set)).status_code == 200
    document = await ms.dv("GET", "contosotest", "$metadata")
    root = ElementTree.fromstring(document.content)
    sets = {node.get("Name") for node in root.iter("{http://docs.oasis-open.org/odata/ns/edm}EntitySet")}
    assert {TAX_TYPE.entity_set, "systemusers", "solutions"} <= sets


async def test_queries_filter_order_select_and_reject_skip(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    for number, name in enumerate(["Sales", "rent", "Bank Fees", "Wages"]):
        response = await ms.dv("POST", PROD, CHART_OF_ACCOUNTS.entity_set, json=_account(connector, f"a{number}", name))
        assert response.status_code == 204

    query = (f"{CHART_OF_ACCOUNTS.entity_set}?$select=xdc_name,_xdc_connectorid_value"
             f"&$filter=_xdc_connectorid_value eq {connector} and xdc_name ne 'wages'&$orderby=xdc_name desc")
    body = (await ms.dv("GET", PROD, query)).json()

    assert [row["xdc_name"] for row in body["value"]] == ["Sales", "rent", "Bank Fees"]
    assert body["@odata.context"] == f"{ms.api(PROD)}/$metadata#{CHART_OF_ACCOUNTS.entity_set}(xdc_name,_xdc_connectorid_value)"
    assert all(row["_xdc_connectorid_value"] == connector for row in body["value"])
    contains = await ms.dv("GET", PROD, f"{CHART_OF_ACCOUNTS.entity_set}?$filter=contains(xdc_name,'BANK')&$top=5")
    assert [row["xdc_name"] for row in contains.json()["value"]] == ["Bank Fees"]
    skip = await ms.dv("GET", PROD, f"{CHART_OF_ACCOUNTS.entity_set}?$skip=2")
    assert skip.status_code == 400
    guid_as_string = await ms.dv("GET", PROD, f"{CHART_OF_ACCOUNTS.entity_set}?$filter=_xdc_connectorid_value eq '{connector}'")
    assert guid_as_string.status_code == 400
    unknown = await ms.dv("GET", PROD, f"{CHART_OF_ACCOUNTS.entity_set}?$select=xdc_nope")
    assert unknown.json()["error"]["code"] == "0x80060888"


async def test_paging_follows_the_opaque_next_link(ms: MsSandboxes) -> None:
    connector = await _connector(ms)
    for number in range(7):
        await ms.dv("POST", PROD, TAX_TYPE.entity_set, json={
            "xdc_ConnectorId@odata.bind": f"/{CONNECTOR.entity_set}({connector})", "xdc_xerotaxtype": f"T{number}",
            "xdc_name": f"Tax {number}",
        })

    seen: list[str] = []
    url: str | None = f"{TAX_TYPE.entity_set}?$select=xdc_xerotaxtype"
    pages = 0
    while url:
        response = await ms.dv("GET", PROD, url, headers={"Prefer": "odata.maxpagesize=3"})
        assert response.headers["Preference-Applied"] == "odata.maxpagesize=3"
        body = response.json()
        seen += [row["xdc_xerotaxtype"] for row in body["value"]]
        next_link = body.get("@odata.nextLink")
        assert next_link is None or "$skiptoken=%3Ccookie%20pagenumber=" in next_link
        url = next_link.removeprefix(ms.api(PROD) + "/") if next_link else None
        pages += 1

    assert pages == 3
    assert sorted(seen) == [f"T{n}" for n in range(7)]


async def test_the_users_time_zone_can_be_found(ms: MsSandboxes) -> None:
    who = (await ms.dv("GET", PROD, "WhoAmI")).json()
    settings = await ms.dv("GET", PROD, f"usersettingscollection({who['UserId']})?$select=timezonecode")
    code = settings.json()["timezonecode"]
    zones = await ms.dv("GET", PROD, f"timezonedefinitions?$filter=timezonecode eq {code}&$select=standardname,userinterfacename")

    assert zones.json()["value"][0]["standardname"] == "New Zealand Standard Time"
    assert zones.json()["value"][0]["userinterfacename"] == "(GMT+12:00) Auckland, Wellington"


async def _privileges(ms: MsSandboxes, upn: str) -> set[str]:
    who = (await ms.dv("GET", PROD, "WhoAmI", upn=upn)).json()
    response = await ms.dv("GET", PROD, f"systemusers({who['UserId']})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()", upn=upn)
    assert response.status_code == 200, response.text
    privileges = response.json()["RolePrivileges"]
    assert all({"Depth", "PrivilegeId", "BusinessUnitId", "PrivilegeName"} <= set(p) for p in privileges)
    return {p["PrivilegeName"] for p in privileges}


async def test_alice_holds_the_connector_role_and_carol_does_not(ms: MsSandboxes) -> None:
    assert set(CONNECTOR_USER_ROLE.privileges) <= await _privileges(ms, ALICE.upn)
    carol = await _privileges(ms, CAROL.upn)
    assert not set(CONNECTOR_USER_ROLE.privileges) & carol

    denied = await ms.dv("POST", PROD, CONNECTOR.entity_set, upn=CAROL.upn, json={"xdc_name": "x"})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "0x80040220"
    assert privilege_name(Privilege.CREATE, CONNECTOR) in denied.json()["error"]["message"]

    ms.dataverse.grant_role(PROD, CAROL.upn)
    assert set(CONNECTOR_USER_ROLE.privileges) <= await _privileges(ms, CAROL.upn)
    ms.dataverse.revoke_role(PROD, ALICE.upn)
    assert (await ms.dv("GET", PROD, CONNECTOR.entity_set)).status_code == 403
