"""Solution import in the Dataverse sandbox, written from the documentation; each test names its page.

ImportSolution: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/importsolution
ImportSolutionAsync: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/importsolutionasync
asyncoperation: https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
importjob: https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/importjob
"""

from __future__ import annotations

import base64
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.sync.tables import CONNECTOR, SOLUTION_UNIQUE_NAME, TAX_TYPE
from sandbox.dataverse import SYSTEM_ADMINISTRATOR
from sandbox.entra import ALICE
from tests.sandbox.conftest_ms import MsSandboxes, guid_of, running_ms_sandboxes, solution_zip

PROD, TEST = "contosoprod", "contosotest"  # alice: connector role in prod, System Administrator in test


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


def _rewrite(data: bytes, change: Callable[[dict[str, bytes]], object]) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        files = {name: source.read(name) for name in source.namelist()}
    change(files)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in files.items():
            target.writestr(name, content)
    return out.getvalue()


def _body(data: bytes, job_id: str | None = None) -> dict[str, Any]:
    return {
        "CustomizationFile": base64.b64encode(data).decode(), "OverwriteUnmanagedCustomizations": False,
        "PublishWorkflows": False, "ImportJobId": job_id or str(uuid.uuid4()),
    }


async def _import(ms: MsSandboxes, env: str, data: bytes, job_id: str | None = None) -> httpx.Response:
    return await ms.dv("POST", env, "ImportSolution", json=_body(data, job_id))


async def _get(ms: MsSandboxes, env: str, path: str) -> dict[str, Any]:
    response = await ms.dv("GET", env, path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_import_solution_creates_the_tables_role_solution_and_publisher(ms: MsSandboxes) -> None:
    # ImportSolution page: the action returns no value; the import job records what happened.
    job_id = str(uuid.uuid4())
    assert (await ms.dv("GET", TEST, CONNECTOR.entity_set)).status_code == 404

    response = await _import(ms, TEST, solution_zip(), job_id)

    assert response.status_code == 204, response.text
    assert (await ms.dv("GET", TEST, CONNECTOR.entity_set)).status_code == 200
    job = await _get(ms, TEST, f"importjobs({job_id})")
    assert job["progress"] == 100
    assert job["completedon"]
    assert job["solutionname"] == SOLUTION_UNIQUE_NAME
    assert '<result result="success"' in job["data"]
    solutions = await _get(ms, TEST, f"solutions?$filter=uniquename eq '{SOLUTION_UNIQUE_NAME}'")
    [row] = solutions["value"]
    assert (row["ismanaged"], row["friendlyname"]) == (True, "Xero Dynamics Connector")
    publishers = await _get(ms, TEST, "publishers?$filter=customizationprefix eq 'xdc'")
    assert publishers["value"][0]["customizationoptionvalueprefix"] == 10000
    roles = await _get(ms, TEST, "roles?$filter=name eq 'Xero Connector User'")
    assert len(roles["value"]) == 1


async def test_import_async_is_polled_through_the_async_operation_and_the_job(ms: MsSandboxes) -> None:
    # ImportSolutionAsync(Response) pages: AsyncOperationId and ImportJobKey; asyncoperation page:
    # statecode 0 Ready / 2 Locked / 3 Completed, statuscode 0 WaitingForResources / 20 InProgress / 30 Succeeded.
    ms.dataverse.set_import_timing(import_seconds=30)
    started = await ms.dv("POST", TEST, "ImportSolutionAsync", json=_body(solution_zip()))
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["@odata.context"].endswith("#Microsoft.Dynamics.CRM.ImportSolutionAsyncResponse")
    operation_id, job_key = body["AsyncOperationId"], body["ImportJobKey"]

    running = await _get(ms, TEST, f"asyncoperations({operation_id})")
    assert (running["statecode"], running["statuscode"]) == (2, 20)
    assert (await ms.dv("GET", TEST, CONNECTOR.entity_set)).status_code == 404  # nothing before it completes

    ms.clock.advance(31)
    done = await _get(ms, TEST, f"asyncoperations({operation_id})")
    assert (done["statecode"], done["statuscode"]) == (3, 30)
    assert done["completedon"]
    job = await _get(ms, TEST, f"importjobs({job_key})")
    assert job["progress"] == 100
    assert '<result result="success"' in job["data"]
    assert (await ms.dv("GET", TEST, CONNECTOR.entity_set)).status_code == 200


async def test_a_failed_async_import_is_reported_by_the_operation_and_the_job(ms: MsSandboxes) -> None:
    # asyncoperation page: statuscode 31 Failed, with `message`; the import job keeps the log.
    started = await ms.dv("POST", TEST, "ImportSolutionAsync", json=_body(b"not a zip"))
    assert started.status_code == 200  # the package is only read by the job
    operation_id, job_key = started.json()["AsyncOperationId"], started.json()["ImportJobKey"]

    failed = await _get(ms, TEST, f"asyncoperations({operation_id})")

    assert (failed["statecode"], failed["statuscode"]) == (3, 31)
    assert "0x80048060" in failed["message"]
    assert '<result result="failure" errorcode="0x80048060"' in (await _get(ms, TEST, f"importjobs({job_key})"))["data"]


async def test_an_import_while_another_runs_is_refused(ms: MsSandboxes) -> None:
    # "Cannot start another solution operation at the same time" (CustomizationLockException).
    ms.dataverse.set_import_timing(import_seconds=30)
    assert (await ms.dv("POST", TEST, "ImportSolutionAsync", json=_body(solution_zip()))).status_code == 200

    second = await _import(ms, TEST, solution_zip())

    assert second.status_code == 429
    assert second.json()["error"]["code"] == "0x80071151"
    assert "another [Import] running" in second.json()["error"]["message"]


async def test_importing_needs_the_import_customizations_privilege(ms: MsSandboxes) -> None:
    # alice holds Basic User and the connector role in prod: neither grants prvImportCustomization
    # (https://learn.microsoft.com/power-platform/admin/security-roles-privileges#miscellaneous-privileges).
    response = await _import(ms, PROD, solution_zip("9.0.0.0"))

    assert response.status_code == 403
    assert "prvImportCustomization" in response.json()["error"]["message"]
    assert ms.dataverse.env(PROD).solutions[SOLUTION_UNIQUE_NAME].version != "9.0.0.0"


@pytest.mark.parametrize("broken", [
    b"this is not a zip file",
    _rewrite(solution_zip(), lambda files: files.pop("customizations.xml")),
    _rewrite(solution_zip(), lambda files: files.pop("solution.xml")),
    _rewrite(solution_zip(), lambda files: files.update({"customizations.xml": b"<ImportExportXml><Entities>"})),
])
async def test_a_corrupt_or_incomplete_zip_is_refused_and_nothing_is_created(ms: MsSandboxes, broken: bytes) -> None:
    # Error ImportCustomizationsBadZipFileError (0x80048060) of the web service error codes page.
    job_id = str(uuid.uuid4())
    response = await _import(ms, TEST, broken, job_id)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80048060"
    assert "solution.xml, customizations.xml, and [Content_Types].xml" in response.json()["error"]["message"]
    assert (await ms.dv("GET", TEST, CONNECTOR.entity_set)).status_code == 404
    job = await _get(ms, TEST, f"importjobs({job_id})")
    assert '<result result="failure" errorcode="0x80048060"' in job["data"]


async def test_a_managed_solution_does_not_downgrade(ms: MsSandboxes) -> None:
    # KB 4499878: "The import solution must have a higher version than the existing solution it is upgrading".
    ms.dataverse.grant_role(PROD, ALICE.upn, SYSTEM_ADMINISTRATOR)
    installed = ms.dataverse.env(PROD).solutions[SOLUTION_UNIQUE_NAME].version

    response = await _import(ms, PROD, solution_zip("0.0.1.0"))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80048541"
    assert ms.dataverse.env(PROD).solutions[SOLUTION_UNIQUE_NAME].version == installed


async def test_an_upgrade_updates_the_tables_in_place_and_keeps_their_rows(ms: MsSandboxes) -> None:
    # https://learn.microsoft.com/power-platform/alm/update-solutions-alm: an upgrade replaces the components.
    created = await ms.dv("POST", PROD, CONNECTOR.entity_set, json={
        "xdc_name": "Kept", "xdc_connectionid": "conn-kept", "xdc_xerotenantid": "t-1",
    })
    connector = guid_of(created.headers["OData-EntityId"])
    ms.dataverse.grant_role(PROD, ALICE.upn, SYSTEM_ADMINISTRATOR)

    response = await _import(ms, PROD, solution_zip("9.0.0.0"))

    assert response.status_code == 204, response.text
    row = await _get(ms, PROD, f"{CONNECTOR.entity_set}({connector})?$select=xdc_name")
    assert row["xdc_name"] == "Kept"
    [solution] = (await _get(ms, PROD, f"solutions?$filter=uniquename eq '{SOLUTION_UNIQUE_NAME}'"))["value"]
    assert solution["version"] == "9.0.0.0"


async def test_an_import_that_fails_half_way_leaves_nothing_behind(ms: MsSandboxes) -> None:
    # The tables are created before the relationships are checked; a relationship to a table that exists
    # nowhere fails the import, and everything it created is rolled back.
    def dangling(files: dict[str, bytes]) -> None:
        text = files["customizations.xml"].decode()
        files["customizations.xml"] = text.replace(
            "<ReferencedEntityName>xdc_Connector</ReferencedEntityName>",
            "<ReferencedEntityName>xdc_Missing</ReferencedEntityName>", 1,
        ).encode()

    job_id = str(uuid.uuid4())
    response = await _import(ms, TEST, _rewrite(solution_zip(), dangling), job_id)

    assert response.status_code == 400
    assert "xdc_missing" in response.json()["error"]["message"]
    env = ms.dataverse.env(TEST)
    assert not [name for name in env.tables if name.startswith("xdc_")]
    assert SOLUTION_UNIQUE_NAME not in env.solutions
    assert "Xero Connector User" not in env.role_ids
    assert (await _get(ms, TEST, f"solutions?$filter=uniquename eq '{SOLUTION_UNIQUE_NAME}'"))["value"] == []
    assert '<result result="failure"' in (await _get(ms, TEST, f"importjobs({job_id})"))["data"]


async def test_a_new_alternate_key_is_usable_only_once_its_index_is_active(ms: MsSandboxes) -> None:
    # EntityKeyIndexStatus (Pending, InProgress, Active, Failed): the index is built by a system job.
    ms.dataverse.set_import_timing(key_seconds=60)
    assert (await _import(ms, TEST, solution_zip())).status_code == 204
    created = await ms.dv("POST", TEST, CONNECTOR.entity_set, json={
        "xdc_name": "K", "xdc_connectionid": "conn-k", "xdc_xerotenantid": "t",
    })
    connector = guid_of(created.headers["OData-EntityId"])
    by_key = f"{TAX_TYPE.entity_set}(_xdc_connectorid_value={connector},xdc_xerotaxtype='OUTPUT2')"

    early = await ms.dv("PATCH", TEST, by_key, json={"xdc_name": "GST"})
    assert early.status_code == 400
    assert "not an active alternate key" in early.json()["error"]["message"]

    ms.clock.advance(61)
    late = await ms.dv("PATCH", TEST, by_key, json={"xdc_name": "GST"})
    assert late.status_code == 204, late.text


async def test_entity_key_metadata_reports_the_index_status(ms: MsSandboxes) -> None:
    # EntityKeyMetadata.EntityKeyIndexStatus through `EntityDefinitions(LogicalName='x')/Keys` (Web API
    # metadata query; EntityKeyIndexStatus EnumType: Pending, InProgress, Active, Failed).
    ms.dataverse.set_import_timing(key_seconds=60)
    assert (await _import(ms, TEST, solution_zip())).status_code == 204
    path = f"EntityDefinitions(LogicalName='{TAX_TYPE.logical_name}')/Keys?$select=LogicalName,EntityKeyIndexStatus"

    pending = await _get(ms, TEST, path)
    ms.clock.advance(61)
    active = await _get(ms, TEST, path)
    missing = await ms.dv("GET", TEST, "EntityDefinitions(LogicalName='xdc_nothing')/Keys")

    assert [(k["LogicalName"], k["EntityKeyIndexStatus"]) for k in pending["value"]] == [
        (TAX_TYPE.alternate_key_name, "Pending")
    ]
    assert [k["EntityKeyIndexStatus"] for k in active["value"]] == ["Active"]
    assert missing.status_code == 404
