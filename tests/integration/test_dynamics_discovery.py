"""Global Discovery through DiscoveryClient, with tokens from a real sign-in."""

# ruff: noqa: F811

from __future__ import annotations

import pytest

from bot.errors import AuthError
from sandbox.dataverse import ENVIRONMENTS
from sandbox.entra import ALICE, CAROL, CONTOSO, DAVE
from tests.integration.test_dynamics_harness import Dyn, dyn, sandbox_data  # noqa: F401


async def test_lists_only_the_enabled_environments_the_user_is_in(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)

    envs = await dyn.environments()

    assert [e.unique_name for e in envs] == ["contosoprod", "contosotest"]  # not the disabled archive
    prod = envs[0]
    seed = next(s for s in ENVIRONMENTS if s.unique_name == "contosoprod")
    base = dyn.sandboxes.dataverse_url
    assert prod.id == seed.organization_id
    assert prod.friendly_name == "Contoso Production"
    assert prod.url == f"{base}/env/contosoprod"
    assert prod.api_url == f"{base}/api-env/contosoprod"  # ApiUrl differs from Url, as in the real service
    assert prod.state == 0
    assert prod.tenant_id == CONTOSO.id
    assert prod.environment_id == seed.environment_id
    assert prod.version
    # What went over the wire: a $filter on State and a $select of the fields used, OData headers.
    sent = dyn.sent[-1]
    assert sent.url.path == "/api/discovery/v2.0/Instances"
    assert sent.url.params["$filter"] == "State eq 0"
    assert set(sent.url.params["$select"].split(",")) >= {"Id", "UniqueName", "Url", "ApiUrl", "State"}
    assert sent.headers["OData-Version"] == "4.0"
    assert sent.headers["Authorization"].startswith("Bearer ")


async def test_a_user_in_one_environment_and_a_user_in_none(dyn: Dyn) -> None:
    await dyn.sign_in(CAROL.upn, "carol")
    await dyn.sign_in(DAVE.upn, "dave")

    assert [e.unique_name for e in await dyn.environments("carol")] == ["contosoprod"]
    assert await dyn.environments("dave") == []


async def test_a_disabled_environment_disappears(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    dyn.sandboxes.dataverse.set_state("contosotest", 1)

    assert [e.unique_name for e in await dyn.environments()] == ["contosoprod"]


async def test_a_token_for_another_audience_is_refused(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    env_url = f"{dyn.sandboxes.dataverse_url}/env/contosoprod"
    wrong = await dyn.auth.access_token("conn-dyn-1", env_url)

    with pytest.raises(AuthError) as caught:
        await dyn.discovery.environments(wrong)
    assert caught.value.status == 401
