"""Global Discovery: the environments the signed-in user is provisioned in, as an OData collection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.dataverse import ENVIRONMENTS
from sandbox.entra import ALICE, CAROL, CONTOSO, DAVE
from tests.sandbox.conftest_ms import MsSandboxes, running_ms_sandboxes


@pytest.fixture
async def ms(tmp_path: Path) -> AsyncIterator[MsSandboxes]:
    async with running_ms_sandboxes(tmp_path) as sandboxes:
        yield sandboxes


async def _instances(ms: MsSandboxes, upn: str, suffix: str = "", **params: str) -> Any:
    token = await ms.token(upn)
    response = await ms.http.get(
        f"{ms.dataverse_url}/api/discovery/v2.0/Instances{suffix}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_alice_sees_her_three_environments_with_the_documented_fields(ms: MsSandboxes) -> None:
    body = await _instances(ms, ALICE.upn)

    assert body["@odata.context"] == f"{ms.dataverse_url}/api/discovery/v2.0/$metadata#Instances"
    names = {row["UniqueName"]: row for row in body["value"]}
    assert set(names) == {"contosoprod", "contosotest", "contosoarchive"}
    prod = names["contosoprod"]
    # Url is the token audience, ApiUrl where calls go: two addresses, as in the real service.
    assert prod["Url"] == ms.env_url("contosoprod")
    assert prod["ApiUrl"] == ms.api_url("contosoprod") != prod["Url"]
    assert prod["State"] == 0
    assert names["contosoarchive"]["State"] == 1
    assert prod["TenantId"] == CONTOSO.id
    assert prod["IsUserSysAdmin"] is False
    assert names["contosotest"]["IsUserSysAdmin"] is True
    expected = {"Id", "UniqueName", "UrlName", "FriendlyName", "Url", "ApiUrl", "State", "Version", "Region",
                "TenantId", "EnvironmentId", "IsUserSysAdmin", "LastUpdated"}
    assert expected <= set(prod)


async def test_carol_and_dave_only_see_where_they_are_provisioned(ms: MsSandboxes) -> None:
    assert [row["UniqueName"] for row in (await _instances(ms, CAROL.upn))["value"]] == ["contosoprod"]
    assert (await _instances(ms, DAVE.upn))["value"] == []


async def test_filter_is_case_sensitive_and_select_limits_the_fields(ms: MsSandboxes) -> None:
    body = await _instances(ms, ALICE.upn, **{"$filter": "State eq 0 and startswith(UniqueName,'contoso')",
                                             "$select": "UniqueName,ApiUrl"})

    assert body["@odata.context"].endswith("#Instances(UniqueName,ApiUrl)")
    assert sorted(row["UniqueName"] for row in body["value"]) == ["contosoprod", "contosotest"]
    assert set(body["value"][0]) == {"UniqueName", "ApiUrl"}
    upper = await _instances(ms, ALICE.upn, **{"$filter": "UniqueName eq 'CONTOSOPROD'"})
    assert upper["value"] == []
    either = await _instances(ms, ALICE.upn, **{"$filter": "UniqueName eq 'contosotest' or contains(FriendlyName,'Archive')"})
    assert len(either["value"]) == 2


async def test_key_lookups_still_return_arrays(ms: MsSandboxes) -> None:
    prod = next(seed for seed in ENVIRONMENTS if seed.unique_name == "contosoprod")

    by_id = await _instances(ms, ALICE.upn, f"({prod.organization_id})")
    by_name = await _instances(ms, ALICE.upn, "(UniqueName='contosoprod')")

    assert [row["Id"] for row in by_id["value"]] == [prod.organization_id]
    assert [row["UniqueName"] for row in by_name["value"]] == ["contosoprod"]


async def test_a_token_for_an_environment_is_refused_by_discovery(ms: MsSandboxes) -> None:
    token = await ms.token(ALICE.upn, ms.env_url("contosoprod"))

    response = await ms.http.get(
        f"{ms.dataverse_url}/api/discovery/v2.0/Instances", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith(f"Bearer authorization_uri={ms.entra_url}/")
    bad_filter = await ms.http.get(
        f"{ms.dataverse_url}/api/discovery/v2.0/Instances",
        params={"$filter": "Nope eq 1"},
        headers={"Authorization": f"Bearer {await ms.token(ALICE.upn)}"},
    )
    assert bad_filter.status_code == 400
