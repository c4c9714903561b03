"""The Dataverse sandbox behaves as the documentation says; each test names the page it follows.

Solution import has its own module (test_dataverse_import.py). Pages, short names used below:
UPSERT   https://learn.microsoft.com/power-apps/developer/data-platform/use-upsert-insert-update-record
BIND     https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api
MULTI    https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/upsertmultiple
BULK     https://learn.microsoft.com/power-apps/developer/data-platform/bulk-operations
FIELDS   https://learn.microsoft.com/power-apps/maker/data-platform/types-of-fields
DISCO    https://learn.microsoft.com/power-apps/developer/data-platform/webapi/discover-url-organization-web-api
PRIVS    https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/retrieveuserprivileges
ACCESS   https://learn.microsoft.com/power-platform/admin/security-roles-privileges#access-levels
"""

from __future__ import annotations

import base64
import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sync.tables import CONNECTOR, TAX_TYPE
from sandbox.dataverse import CONNECTOR_ROLE, SYSTEM_ADMINISTRATOR
from sandbox.entra import ALICE, CAROL
from tests.sandbox.conftest_ms import MsSandboxes, guid_of, running_ms_sandboxes, solution_zip

PROD = "contosoprod"
TAX_TYPE_TYPE = "Microsoft.Dynamics.CRM.xdc_taxtype"


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def _connector(ms: MsSandboxes, connection_id: str = "conn-1", upn: str = ALICE.upn) -> str:
    response = await ms.dv("POST", PROD, CONNECTOR.entity_set, upn=upn, json={
        "xdc_name": "Demo", "xdc_connectionid": connection_id, "xdc_xerotenantid": "tenant-1",
    })
    assert response.status_code == 204, response.text
    return guid_of(response.headers["OData-EntityId"])


def _tax(connector: str, code: str, nav: str = "xdc_ConnectorId", **values: Any) -> dict[str, Any]:
    return {f"{nav}@odata.bind": f"/{CONNECTOR.entity_set}({connector})", "xdc_xerotaxtype": code,
            "xdc_name": f"Tax {code}", **values}


def _batch(url: str, body: str) -> tuple[str, str]:
    part = (f"--changeset_1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1"
            f"\r\n\r\nPOST {url} HTTP/1.1\r\nContent-Type: application/json\r\n\r\n{body}\r\n--changeset_1--")
    text = f"--batch_x\r\nContent-Type: multipart/mixed; boundary=changeset_1\r\n\r\n{part}\r\n--batch_x--\r\n"
    return text, "multipart/mixed; boundary=batch_x"


async def _every_write_path(ms: MsSandboxes, row: dict[str, Any]) -> list[httpx.Response]:
    """The same row through POST, $batch, CreateMultiple and UpsertMultiple."""
    api = ms.api(PROD)
    body, content_type = _batch(f"{api}/{TAX_TYPE.entity_set}", json.dumps(row))
    target = {"@odata.type": TAX_TYPE_TYPE, **row}
    keyed = {k: v for k, v in target.items() if k != "xdc_xerotaxtype"}
    connector = row[next(k for k in row if k.endswith("@odata.bind"))].split("(")[1].rstrip(")")
    keyed["@odata.id"] = f"{TAX_TYPE.entity_set}(_xdc_connectorid_value={connector},xdc_xerotaxtype='{row['xdc_xerotaxtype']}')"
    return [
        await ms.dv("POST", PROD, TAX_TYPE.entity_set, json=row),
        await ms.dv("POST", PROD, "$batch", content=body, headers={"Content-Type": content_type}),
        await ms.dv("POST", PROD, f"{TAX_TYPE.entity_set}/Microsoft.Dynamics.CRM.CreateMultiple", json={"Targets": [target]}),
        await ms.dv("POST", PROD, f"{TAX_TYPE.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": [keyed]}),
    ]


async def test_binds_use_the_navigation_property_with_its_case_on_every_write_path(ms: MsSandboxes) -> None:
    # BIND: the navigation property of a custom lookup is its schema name; OData names are case-sensitive.
    connector = await _connector(ms)

    for response in await _every_write_path(ms, _tax(connector, "LOWER", nav="xdc_connectorid")):
        assert response.status_code == 400, response.text
        assert "An undeclared property 'xdc_connectorid' which only has property annotations" in response.text
    assert ms.dataverse.rows(PROD, TAX_TYPE.entity_set) == []

    accepted = await ms.dv("POST", PROD, TAX_TYPE.entity_set, json=_tax(connector, "SCHEMA"))
    assert accepted.status_code == 204, accepted.text
    assert ms.dataverse.rows(PROD, TAX_TYPE.entity_set)[0]["_xdc_connectorid_value"] == connector


async def test_choice_values_outside_the_option_set_are_refused_on_every_write_path(ms: MsSandboxes) -> None:
    # FIELDS (Choice): the value must be one of the option set's; ours start at 100,000,000.
    connector = await _connector(ms)

    for response in await _every_write_path(ms, _tax(connector, "BADCHOICE", xdc_recordstate=3)):
        assert response.status_code == 400, response.text
        assert '"code":"0x8004431A"' in response.text.replace(" ", "")
    ok = await ms.dv("POST", PROD, TAX_TYPE.entity_set, json=_tax(connector, "OK", xdc_recordstate=100000001))
    assert ok.status_code == 204, ok.text


async def test_decimals_are_rounded_to_the_column_precision(ms: MsSandboxes) -> None:
    # FIELDS (Decimal number): a value with more decimal places than the column's precision is rounded.
    connector = await _connector(ms)

    response = await ms.dv(
        "POST", PROD, f"{TAX_TYPE.entity_set}?$select=xdc_effectiverate,xdc_displayrate",
        headers={"Prefer": "return=representation"},
        json=_tax(connector, "RATE", xdc_effectiverate=12.34565, xdc_displayrate=8.87504),
    )

    assert response.status_code == 201, response.text
    assert (response.json()["xdc_effectiverate"], response.json()["xdc_displayrate"]) == (12.3457, 8.875)


async def test_strings_longer_than_the_column_are_refused_on_every_write_path(ms: MsSandboxes) -> None:
    connector = await _connector(ms)

    for response in await _every_write_path(ms, _tax(connector, "LONG", xdc_name="x" * 151)):
        assert response.status_code == 400, response.text
        assert "0x80044331" in response.text
        assert "'150'" in response.text


async def test_business_required_is_not_enforced_by_the_web_api(ms: MsSandboxes) -> None:
    # FIELDS (column requirement level): "business required" is enforced by forms, not by the API.
    connector = await _connector(ms)
    row = _tax(connector, "NONAME")
    del row["xdc_name"]

    response = await ms.dv("POST", PROD, TAX_TYPE.entity_set, json=row)

    assert response.status_code == 204, response.text


async def test_an_upsert_by_key_answers_with_the_key_form_and_201_then_200(ms: MsSandboxes) -> None:
    # UPSERT (Web API): OData-EntityId uses the key values, not the GUID; representation 201 / 200, $select.
    connector = await _connector(ms)
    key = f"_xdc_connectorid_value={connector},xdc_xerotaxtype='GST'"

    created = await ms.dv("PATCH", PROD, f"{TAX_TYPE.entity_set}({key})", json={"xdc_name": "GST"})
    assert created.status_code == 204
    assert created.headers["OData-EntityId"] == f"{ms.api(PROD)}/{TAX_TYPE.entity_set}({key})"

    new_key = f"_xdc_connectorid_value={connector},xdc_xerotaxtype='NONE'"
    first = await ms.dv("PATCH", PROD, f"{TAX_TYPE.entity_set}({new_key})?$select=xdc_taxtypeid",
                        headers={"Prefer": "return=representation"}, json={"xdc_name": "No GST"})
    again = await ms.dv("PATCH", PROD, f"{TAX_TYPE.entity_set}({new_key})?$select=xdc_taxtypeid",
                        headers={"Prefer": "return=representation"}, json={"xdc_name": "No GST (updated)"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert set(first.json()) == {"@odata.context", "@odata.etag", "xdc_taxtypeid"}
    assert first.json()["xdc_taxtypeid"] == again.json()["xdc_taxtypeid"]
    assert first.json()["@odata.context"].endswith(f"#{TAX_TYPE.entity_set}(xdc_taxtypeid)/$entity")


async def test_upsert_multiple_creates_from_odata_id_keys_and_the_body_wins(ms: MsSandboxes) -> None:
    # MULTI: targets carry @odata.type and @odata.id (key); UPSERT: a new record takes the key values of the
    # URL unless the body sets them; an existing record ignores key values in the body.
    connector = await _connector(ms)
    action = f"{TAX_TYPE.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple"

    def target(code: str, **values: Any) -> dict[str, Any]:
        return {"@odata.type": TAX_TYPE_TYPE, "xdc_name": code,
                "@odata.id": f"{TAX_TYPE.entity_set}(_xdc_connectorid_value={connector},xdc_xerotaxtype='{code}')",
                **values}

    response = await ms.dv("POST", PROD, action, json={"Targets": [target("A"), target("B", xdc_xerotaxtype="B-BODY")]})
    assert response.status_code == 204, response.text
    assert sorted(r["xdc_xerotaxtype"] for r in ms.dataverse.rows(PROD, TAX_TYPE.entity_set)) == ["A", "B-BODY"]

    again = await ms.dv("POST", PROD, action, json={"Targets": [target("A", xdc_xerotaxtype="IGNORED")]})
    assert again.status_code == 204
    assert sorted(r["xdc_xerotaxtype"] for r in ms.dataverse.rows(PROD, TAX_TYPE.entity_set)) == ["A", "B-BODY"]


async def test_discovery_url_is_the_audience_and_api_url_serves_the_web_api(ms: MsSandboxes) -> None:
    # DISCO: Url (https://org.crm.dynamics.com) and ApiUrl (https://org.api.crm.dynamics.com) differ.
    token = await ms.token(ALICE.upn, ms.dataverse_url)
    listed = await ms.http.get(f"{ms.dataverse_url}/api/discovery/v2.0/Instances",
                               headers={"Authorization": f"Bearer {token}"})
    prod = next(e for e in listed.json()["value"] if e["UniqueName"] == PROD)
    assert prod["Url"] != prod["ApiUrl"]

    env_token = await ms.token(ALICE.upn, prod["Url"])
    auth = {"Authorization": f"Bearer {env_token}"}
    assert (await ms.http.get(f"{prod['ApiUrl']}/api/data/v9.2/WhoAmI", headers=auth)).status_code == 200
    assert (await ms.http.get(f"{prod['Url']}/api/data/v9.2/WhoAmI", headers=auth)).status_code == 404


async def test_retrieve_user_privileges_reports_the_depth_the_imported_role_grants(ms: MsSandboxes) -> None:
    # PRIVS: RolePrivileges with Depth; the role's levels come from the imported <RolePrivilege level=...>.
    ms.dataverse.grant_role(PROD, ALICE.upn, SYSTEM_ADMINISTRATOR)
    assert (await ms.dv("POST", PROD, "ImportSolution", json=_import_body(_basic_read_zip()))).status_code == 204
    who = (await ms.dv("GET", PROD, "WhoAmI")).json()["UserId"]
    ms.dataverse.revoke_role(PROD, ALICE.upn, SYSTEM_ADMINISTRATOR)

    response = await ms.dv("GET", PROD, f"systemusers({who})/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()")

    depths = {p["PrivilegeName"]: p["Depth"] for p in response.json()["RolePrivileges"]}
    assert depths["prvReadxdc_Connector"] == "Basic"
    assert depths["prvWritexdc_Connector"] == "Global"


async def test_a_basic_depth_reader_sees_only_their_own_rows(ms: MsSandboxes) -> None:
    # ACCESS: Basic (User) reaches the user's own records; the retrieve of another's row is refused.
    alices = await _connector(ms, "conn-alice")
    ms.dataverse.grant_role(PROD, ALICE.upn, SYSTEM_ADMINISTRATOR)
    assert (await ms.dv("POST", PROD, "ImportSolution", json=_import_body(_basic_read_zip()))).status_code == 204
    ms.dataverse.grant_role(PROD, CAROL.upn, CONNECTOR_ROLE)
    carols = await _connector(ms, "conn-carol", upn=CAROL.upn)

    refused = await ms.dv("GET", PROD, f"{CONNECTOR.entity_set}({alices})", upn=CAROL.upn)
    assert refused.status_code == 403
    assert "prvReadxdc_Connector" in refused.json()["error"]["message"]
    own = await ms.dv("GET", PROD, CONNECTOR.entity_set, upn=CAROL.upn)
    assert [row["xdc_connectorid"] for row in own.json()["value"]] == [carols]


def _basic_read_zip() -> bytes:
    """A later version of our solution whose role grants Read on the connector table at Basic depth."""
    source = zipfile.ZipFile(io.BytesIO(solution_zip("9.1.0.0")))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "customizations.xml":
                data = data.replace(b'name="prvReadxdc_Connector" level="Global"', b'name="prvReadxdc_Connector" level="Basic"')
            target.writestr(name, data)
    return out.getvalue()


def _import_body(data: bytes) -> dict[str, Any]:
    return {"CustomizationFile": base64.b64encode(data).decode(), "OverwriteUnmanagedCustomizations": False,
            "PublishWorkflows": False, "ImportJobId": str(uuid.uuid4())}
