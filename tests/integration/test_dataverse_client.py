"""DataverseClient against the Dataverse sandbox with real tokens: setup checks, upserts, bulk upserts
with the $batch fallback, paging, throttling and the status -> error mapping."""

# ruff: noqa: F811

from __future__ import annotations

import pytest

from bot.dialogs.wording import privilege_words
from bot.errors import AuthError, NotFound, PermissionDenied, TransientProviderError
from bot.solution import build_zip, solution_version
from bot.sync.dataverse import DataverseClient
from bot.sync.discovery import Environment
from bot.sync.solution_install import SolutionState, solution_status
from bot.sync.tables import CHART_OF_ACCOUNTS, CONNECTOR, CONNECTOR_USER_ROLE, TAX_TYPE
from sandbox.dataverse import ENVIRONMENTS
from sandbox.entra import ALICE, CAROL
from tests.integration.test_dynamics_harness import Dyn, dyn, sandbox_data  # noqa: F401

PROD = "contosoprod"
TEST = "contosotest"


async def _env(d: Dyn, unique_name: str = PROD, connection_id: str = "conn-dyn-1") -> Environment:
    return next(e for e in await d.environments(connection_id) if e.unique_name == unique_name)


async def _alice(d: Dyn, unique_name: str = PROD) -> DataverseClient:
    await d.sign_in(ALICE.upn)
    return d.client(await _env(d, unique_name))


async def _connector(client: DataverseClient, connection_id: str = "c-1") -> str:
    return await client.upsert(
        CONNECTOR,
        {"xdc_connectionid": connection_id},
        {"xdc_name": "Demo Company (NZ)", "xdc_xerotenantid": "tenant-1"},
    )


def _account(connector_id: str, xero_id: str, name: str) -> tuple[dict[str, str], dict[str, object]]:
    key = {"xdc_connectorid": connector_id, "xdc_xeroaccountid": xero_id}
    row: dict[str, object] = {
        CHART_OF_ACCOUNTS.lookup_bind("xdc_connectorid"): f"/{CONNECTOR.entity_set}({connector_id})",
        "xdc_xeroaccountid": xero_id,
        "xdc_name": name,
        "xdc_code": xero_id[-4:],
    }
    return key, row


def _calls(d: Dyn, suffix: str) -> int:
    return sum(1 for r in d.sandboxes.dataverse.requests if r.path.endswith(suffix))


async def test_who_am_i_and_the_dop_hint(dyn: Dyn) -> None:
    client = await _alice(dyn)

    who = await client.who_am_i()

    seed = next(s for s in ENVIRONMENTS if s.unique_name == PROD)
    member = dyn.sandboxes.dataverse.env(PROD).member_by_upn(ALICE.upn)
    assert who.user_id == member.systemuser_id
    assert who.organization_id == seed.organization_id
    assert who.business_unit_id == seed.root_business_unit_id
    assert client.calls == 1
    assert client.dop_hint is not None


async def test_every_call_carries_the_odata_headers(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    await client.upsert_many(CHART_OF_ACCOUNTS, [_account(connector_id, "acc-0001", "Sales")])
    await client.rows_for_connector(CHART_OF_ACCOUNTS, connector_id, ["xdc_name"])

    web_api = [r for r in dyn.sent if "/api/data/v9.2/" in r.url.path]
    assert [r.method for r in web_api] == ["PATCH", "POST", "GET"]
    for request in web_api:
        assert request.headers["Accept"] == "application/json"
        assert request.headers["OData-MaxVersion"] == "4.0"
        assert request.headers["OData-Version"] == "4.0"
        assert request.headers["If-None-Match"] == "null"
        assert request.headers["Authorization"].startswith("Bearer ")
    assert web_api[0].headers["Content-Type"] == "application/json"
    assert web_api[2].headers["Prefer"] == "odata.maxpagesize=5000"
    assert web_api[2].url.params["$filter"] == f"_xdc_connectorid_value eq {connector_id}"


async def test_solution_installed_or_not(dyn: Dyn) -> None:
    await dyn.sign_in(ALICE.upn)
    prod = dyn.client(await _env(dyn, PROD))
    test = dyn.client(await _env(dyn, TEST))
    shipped = solution_version()

    assert (await solution_status(prod, shipped)).state is SolutionState.CURRENT
    assert (await solution_status(test, shipped)).state is SolutionState.MISSING
    dyn.sandboxes.dataverse.install_solution(TEST, build_zip(managed=True, version="0.9.0.0"))
    older = await solution_status(test, shipped)
    assert (older.state, older.installed) == (SolutionState.OLDER, "0.9.0.0")


async def test_privileges_full_and_missing(dyn: Dyn) -> None:
    alice = await _alice(dyn)
    await dyn.sign_in(CAROL.upn, "carol")
    carol = dyn.client(await _env(dyn, PROD, "carol"), "carol")

    assert await alice.missing_privileges((await alice.who_am_i()).user_id) == []
    missing = await carol.missing_privileges((await carol.who_am_i()).user_id)
    # All of them, in the role's order, named by schema name as Dataverse names privileges.
    assert [m.name for m in missing] == list(CONNECTOR_USER_ROLE.privileges)
    assert [m.name for m in missing[:2]] == ["prvCreatexdc_Connector", "prvReadxdc_Connector"]
    assert privilege_words(missing[1]) == "Read on Xero Connector at Organization level"

    dyn.sandboxes.dataverse.grant_role(PROD, CAROL.upn)
    assert await carol.missing_privileges((await carol.who_am_i()).user_id) == []


async def test_user_timezone_as_iana(dyn: Dyn) -> None:
    alice = await _alice(dyn)
    await dyn.sign_in(CAROL.upn, "carol")
    carol = dyn.client(await _env(dyn, PROD, "carol"), "carol")

    assert await alice.user_timezone((await alice.who_am_i()).user_id) == "Pacific/Auckland"
    assert await carol.user_timezone((await carol.who_am_i()).user_id) == "Europe/London"
    with pytest.raises(NotFound):
        await alice.user_timezone("00000000-0000-0000-0000-000000000001")


async def test_upsert_twice_makes_one_row(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    assert await _connector(client) == connector_id

    key, row = _account(connector_id, "acc-0001", "Sales")
    first = await client.upsert(CHART_OF_ACCOUNTS, key, row)
    second = await client.upsert(CHART_OF_ACCOUNTS, key, {**row, "xdc_name": "Sales revenue"})

    assert first == second
    rows = dyn.sandboxes.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)
    assert len(rows) == 1
    assert rows[0]["xdc_chartofaccountsid"] == first
    assert rows[0]["xdc_name"] == "Sales revenue"
    assert rows[0]["_xdc_connectorid_value"] == connector_id
    assert len(dyn.sandboxes.dataverse.rows(PROD, CONNECTOR.entity_set)) == 1


async def test_key_values_with_quotes_and_spaces(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    key = {"xdc_connectorid": connector_id, "xdc_xerotaxtype": "O'Brien TAX/1"}
    row = {CHART_OF_ACCOUNTS.lookup_bind("xdc_connectorid"): f"/{CONNECTOR.entity_set}({connector_id})", "xdc_name": "Odd"}

    first = await client.upsert(TAX_TYPE, key, row)
    assert await client.upsert(TAX_TYPE, key, {**row, "xdc_name": "Odd 2"}) == first

    rows = dyn.sandboxes.dataverse.rows(PROD, TAX_TYPE.entity_set)
    assert [(r["xdc_xerotaxtype"], r["xdc_name"]) for r in rows] == [("O'Brien TAX/1", "Odd 2")]


async def test_upsert_many_sends_one_upsert_multiple_per_thousand(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    rows = [_account(connector_id, f"acc-{i:04d}", f"Account {i}") for i in range(2500)]
    calls_before = client.calls

    results = await client.upsert_many(CHART_OF_ACCOUNTS, rows)

    assert [r.ok for r in results] == [True] * 2500
    assert [r.key for r in results] == [key for key, _ in rows]
    assert _calls(dyn, "/Microsoft.Dynamics.CRM.UpsertMultiple") == 3
    assert client.calls - calls_before == 3
    assert len(dyn.sandboxes.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)) == 2500

    # Again, changed: still 2,500 rows, updated in place.
    renamed = [(key, {**row, "xdc_name": f"{row['xdc_name']} (renamed)"}) for key, row in rows]
    await client.upsert_many(CHART_OF_ACCOUNTS, renamed)
    stored = dyn.sandboxes.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)
    assert len(stored) == 2500
    assert all(r["xdc_name"].endswith("(renamed)") for r in stored)


async def test_one_bad_row_falls_back_to_a_batch_and_is_reported(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    rows = [_account(connector_id, f"acc-{i:04d}", f"Account {i}") for i in range(5)]
    bad_key, bad_row = rows[2]
    rows[2] = (bad_key, {**bad_row, "xdc_name": "x" * 151})  # longer than the column allows

    results = await client.upsert_many(CHART_OF_ACCOUNTS, rows)

    assert [r.ok for r in results] == [True, True, False, True, True]
    failed = results[2]
    assert failed.key == bad_key
    assert failed.status == 400
    assert "xdc_name" in failed.error
    stored = {r["xdc_xeroaccountid"]: r for r in dyn.sandboxes.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)}
    assert sorted(stored) == ["acc-0000", "acc-0001", "acc-0003", "acc-0004"]
    # The key columns came from the URL, not the body (the documented shape leaves them out).
    assert all(r["_xdc_connectorid_value"] == connector_id for r in stored.values())
    assert _calls(dyn, "/Microsoft.Dynamics.CRM.UpsertMultiple") == 1
    assert _calls(dyn, "/$batch") == 1


async def test_find_rows_follows_next_links(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    other_id = await _connector(client, "c-2")
    rows = [_account(connector_id, f"acc-{i:04d}", f"Account {i}") for i in range(7)]
    rows += [_account(other_id, f"acc-{i:04d}", f"Other {i}") for i in range(3)]
    await client.upsert_many(CHART_OF_ACCOUNTS, rows)
    gets_before = _calls(dyn, f"/{CHART_OF_ACCOUNTS.entity_set}")

    found = await client.rows_for_connector(
        CHART_OF_ACCOUNTS, connector_id, ["xdc_xeroaccountid", "xdc_name"], page_size=3
    )

    assert sorted(r["xdc_xeroaccountid"] for r in found) == [f"acc-{i:04d}" for i in range(7)]
    assert all(r["xdc_chartofaccountsid"] for r in found)
    assert _calls(dyn, f"/{CHART_OF_ACCOUNTS.entity_set}") - gets_before == 3  # pages of 3, 3 and 1
    assert await client.find_rows(CHART_OF_ACCOUNTS, "xdc_name eq 'Other 1'", ["xdc_name"]) != []


async def test_429_retry_after_is_honoured(dyn: Dyn) -> None:
    client = await _alice(dyn)
    dyn.sandboxes.dataverse.fail_next(1, 429, retry_after=1)

    who = await client.who_am_i()

    assert who.user_id
    assert dyn.sleeps == [1.0]
    assert client.calls == 2
    assert [r.status for r in dyn.sandboxes.dataverse.requests[-2:]] == [429, 200]


async def test_5xx_and_dropped_connections_are_retried_then_surface(dyn: Dyn) -> None:
    client = await _alice(dyn)
    dyn.sandboxes.dataverse.fail_next(1, 503)
    dyn.sandboxes.dataverse.drop_next(1)
    assert (await client.who_am_i()).user_id
    assert len(dyn.sleeps) == 2

    dyn.sandboxes.dataverse.fail_next(5, 503)
    with pytest.raises(TransientProviderError):
        await client.who_am_i()


async def test_an_expired_access_token_is_refreshed_once(dyn: Dyn) -> None:
    client = await _alice(dyn)
    await client.who_am_i()
    dyn.sandboxes.entra.expire_tokens()

    assert (await client.who_am_i()).user_id
    assert [r.status for r in dyn.sandboxes.dataverse.requests[-2:]] == [401, 200]


async def test_a_revoked_user_must_reconnect(dyn: Dyn) -> None:
    client = await _alice(dyn)
    await client.who_am_i()
    dyn.sandboxes.entra.expire_tokens()
    dyn.sandboxes.entra.revoke_user(ALICE.upn)

    with pytest.raises(AuthError) as caught:
        await client.who_am_i()
    assert caught.value.reconnect_required


async def test_403_names_the_missing_privilege(dyn: Dyn) -> None:
    await dyn.sign_in(CAROL.upn, "carol")
    carol = dyn.client(await _env(dyn, PROD, "carol"), "carol")

    with pytest.raises(PermissionDenied) as denied:
        await carol.upsert(CONNECTOR, {"xdc_connectionid": "c-9"}, {"xdc_name": "x", "xdc_xerotenantid": "t"})
    assert "prvCreatexdc_Connector" in str(denied.value)  # Dataverse names it by schema name
    assert denied.value.status == 403


async def test_a_table_without_upsert_multiple_goes_to_batch_once_and_stays_there(dyn: Dyn) -> None:
    """A refusal of the message itself (404 here, as for a table the message is not offered on) is not
    the records' fault: the chunk goes by $batch, and so do the next ones without asking again."""
    client = await _alice(dyn)
    connector_id = await _connector(client)
    rows = [_account(connector_id, f"acc-{i:04d}", f"Account {i}") for i in range(2500)]
    dyn.sandboxes.dataverse.fail_next(1, 404, path_prefix=f"{CHART_OF_ACCOUNTS.entity_set}/Microsoft.Dynamics.CRM.UpsertMultiple")

    results = await client.upsert_many(CHART_OF_ACCOUNTS, rows)

    assert len(results) == 2500
    assert all(r.ok for r in results)
    assert _calls(dyn, "/Microsoft.Dynamics.CRM.UpsertMultiple") == 1
    assert _calls(dyn, "/$batch") == 3  # 1,000 + 1,000 + 500: never UpsertMultiple then $batch again
    assert len(dyn.sandboxes.dataverse.rows(PROD, CHART_OF_ACCOUNTS.entity_set)) == 2500


async def test_a_bad_record_costs_a_batch_for_its_chunk_only(dyn: Dyn) -> None:
    client = await _alice(dyn)
    connector_id = await _connector(client)
    rows = [_account(connector_id, f"acc-{i:04d}", f"Account {i}") for i in range(1500)]
    key, row = rows[10]
    rows[10] = (key, {**row, "xdc_name": "x" * 151})

    results = await client.upsert_many(CHART_OF_ACCOUNTS, rows)

    assert [i for i, r in enumerate(results) if not r.ok] == [10]
    assert _calls(dyn, "/Microsoft.Dynamics.CRM.UpsertMultiple") == 2  # the second chunk still goes in bulk
    assert _calls(dyn, "/$batch") == 1


async def test_sign_in_and_permission_refusals_of_a_bulk_write_are_not_retried_as_a_batch(dyn: Dyn) -> None:
    await dyn.sign_in(CAROL.upn, "carol")
    carol = dyn.client(await _env(dyn, PROD, "carol"), "carol")
    alice = await _alice(dyn)
    connector_id = await _connector(alice)

    with pytest.raises(PermissionDenied):
        await carol.upsert_many(CHART_OF_ACCOUNTS, [_account(connector_id, "acc-1", "Sales")])
    assert _calls(dyn, "/$batch") == 0
