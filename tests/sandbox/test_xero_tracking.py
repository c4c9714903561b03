"""The Xero sandbox's TrackingCategories: the spec's shape, includeArchived, Xero's limits, the controls."""

from __future__ import annotations

import httpx
import pytest

from sandbox.xero import AU_TENANT_ID, DEMO_EMAIL, NZ_TENANT_ID, UK_TENANT_ID, XeroSandbox
from sandbox.xero.resources import XeroValidationError
from sandbox.xero.tracking import TOO_MANY_ACTIVE
from tests.sandbox.test_xero_spec import Spec, _api_headers, _raw_checks, spec  # noqa: F401

PATH = "/api.xro/2.0/TrackingCategories"


def _headers(xero: XeroSandbox, tenant: str = NZ_TENANT_ID) -> dict[str, str]:
    return _api_headers(xero.issue_tokens(DEMO_EMAIL)["access_token"], tenant)


@pytest.mark.parametrize("tenant", [NZ_TENANT_ID, AU_TENANT_ID, UK_TENANT_ID])
async def test_tracking_bodies_match_the_spec(
    spec: Spec,  # noqa: F811 (the fixture, imported from the spec tests)
    xero: XeroSandbox,
    xero_http: httpx.AsyncClient,
    tenant: str,
) -> None:
    headers = _headers(xero, tenant)
    category_id = next(iter(xero.org(tenant).tracking.categories))
    for path, params in ((PATH, {}), (PATH, {"includeArchived": "true"}), (f"{PATH}/{category_id}", {})):
        response = await xero_http.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        _raw_checks(response.text)
        body = response.json()
        spec.check(spec.envelope_schema("TrackingCategories"), body)
        assert body["TrackingCategories"]


async def test_archived_options_only_with_include_archived(
    xero: XeroSandbox, xero_http: httpx.AsyncClient
) -> None:
    headers = _headers(xero)

    async def options(params: dict[str, str]) -> dict[str, str]:
        body = (await xero_http.get(PATH, params=params, headers=headers)).json()
        return {o["Name"]: o["Status"] for c in body["TrackingCategories"] for o in c["Options"]}

    assert "Central" not in await options({})
    assert (await options({"includeArchived": "true"}))["Central"] == "ARCHIVED"
    region = next(c for c in xero.tracking_categories(NZ_TENANT_ID) if c["Name"] == "Region")
    xero.archive_tracking_category(NZ_TENANT_ID, region["TrackingCategoryID"])
    names = [c["Name"] for c in (await xero_http.get(PATH, headers=headers)).json()["TrackingCategories"]]
    assert names == ["Department"]
    archived = (await xero_http.get(PATH, params={"includeArchived": "true"}, headers=headers)).json()
    assert {c["Name"]: c["Status"] for c in archived["TrackingCategories"]} == {
        "Department": "ACTIVE",
        "Region": "ARCHIVED",
    }
    where = await xero_http.get(
        PATH, params={"includeArchived": "true", "where": 'Status=="ARCHIVED"'}, headers=headers
    )
    assert [c["Name"] for c in where.json()["TrackingCategories"]] == ["Region"]


def test_two_active_categories_at_most(xero: XeroSandbox) -> None:
    with pytest.raises(XeroValidationError, match="2 active tracking categories"):
        xero.add_tracking_category(NZ_TENANT_ID, Name="Project")
    # An archived third one is allowed, and cannot be made active while two are.
    project = xero.add_tracking_category(NZ_TENANT_ID, Name="Project", Status="ARCHIVED")
    with pytest.raises(XeroValidationError, match=TOO_MANY_ACTIVE):
        xero.update_tracking_category(NZ_TENANT_ID, project, Status="ACTIVE")
    region = next(c for c in xero.tracking_categories(NZ_TENANT_ID) if c["Name"] == "Region")
    xero.archive_tracking_category(NZ_TENANT_ID, region["TrackingCategoryID"])
    xero.update_tracking_category(NZ_TENANT_ID, project, Status="ACTIVE")
    xero.add_tracking_category(NZ_TENANT_ID, Name="Spare", Status="ARCHIVED")
    with pytest.raises(XeroValidationError, match="4 tracking categories"):
        xero.add_tracking_category(NZ_TENANT_ID, Name="Fifth", Status="ARCHIVED")


def test_names_are_unique_and_short(xero: XeroSandbox) -> None:
    region = next(c for c in xero.tracking_categories(NZ_TENANT_ID) if c["Name"] == "Region")
    rid = region["TrackingCategoryID"]
    with pytest.raises(XeroValidationError, match="must be unique"):
        xero.add_tracking_option(NZ_TENANT_ID, rid, Name="north")
    with pytest.raises(XeroValidationError, match="unique Name"):
        xero.rename_tracking_category(NZ_TENANT_ID, rid, "Department")
    with pytest.raises(XeroValidationError, match="100 characters"):
        xero.add_tracking_option(NZ_TENANT_ID, rid, Name="x" * 101)


async def test_controls_over_http(xero: XeroSandbox, xero_http: httpx.AsyncClient) -> None:
    base = f"/_sandbox/xero/tenants/{NZ_TENANT_ID}/tracking-categories"
    listed = (await xero_http.get(base)).json()
    region = next(c for c in listed if c["Name"] == "Region")
    rid = region["TrackingCategoryID"]
    added = await xero_http.post(f"{base}/{rid}/options", json={"Name": "West"})
    assert added.status_code == 201
    oid = added.json()["TrackingOptionID"]
    assert (
        await xero_http.patch(f"{base}/{rid}/options/{oid}", json={"Name": "Far West"})
    ).status_code == 200
    assert (await xero_http.post(base, json={"Name": "Project"})).status_code == 400  # a third active one
    assert (await xero_http.delete(f"{base}/{rid}/options/{oid}x")).status_code == 404
    names = {
        o["Name"]
        for o in next(c for c in xero.tracking_categories(NZ_TENANT_ID) if c["Name"] == "Region")["Options"]
    }
    assert "Far West" in names
    assert (await xero_http.delete(f"{base}/{rid}")).status_code == 200
    assert [c["Name"] for c in xero.tracking_categories(NZ_TENANT_ID)] == ["Department"]
    missing = await xero_http.get(f"/api.xro/2.0/TrackingCategories/{rid}", headers=_headers(xero))
    assert missing.status_code == 404
