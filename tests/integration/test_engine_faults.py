"""Runs under failing providers, and runs with more than 1,000 changed records."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bot.storage.base import RunOutcome
from bot.sync.tables import BRANDING_THEME, CHART_OF_ACCOUNTS, TAX_TYPE
from cards.failure_words import record_failure_words
from sandbox.xero.seed import NZ_TENANT_ID
from tests.integration.harness import Harness, synced_writes, xero_api_calls

pytestmark = pytest.mark.timeout(90)
API = "/api.xro/2.0"


async def assert_dynamics_matches_xero(h: Harness, connection: Any) -> None:
    """Every Xero record exactly once in Dynamics, with Xero's current name."""
    for table, key, column, records, xero_key in (
        (CHART_OF_ACCOUNTS, "xdc_xeroaccountid", "xdc_name", h.xero.accounts(NZ_TENANT_ID), "AccountID"),
        (TAX_TYPE, "xdc_xerotaxtype", "xdc_name", h.xero.tax_rates(NZ_TENANT_ID), "TaxType"),
        (
            BRANDING_THEME,
            "xdc_xerobrandingthemeid",
            "xdc_name",
            h.xero.branding_themes(NZ_TENANT_ID),
            "BrandingThemeID",
        ),
    ):
        rows = await h.rows(table, connection, [key, column])
        counts = Counter(r[key] for r in rows)
        assert [k for k, n in counts.items() if n > 1] == [], f"duplicates in {table.logical_name}"
        assert {r[key]: r[column] for r in rows} == {x[xero_key]: x["Name"] for x in records}


async def test_runs_end_with_the_right_data_when_a_fifth_of_the_calls_fail(h: Harness) -> None:
    connection = await h.connect()
    xero_mark, dv_mark = len(h.xero.requests), len(h.dataverse.requests)
    accounts = h.xero.accounts(NZ_TENANT_ID)

    # Run 1 (creates everything): a 429 with Retry-After from Xero, a 503 from Dataverse.
    h.xero.fail_next(1, 429, retry_after=1, path_prefix=f"{API}/Accounts")
    h.xero.fail_next(1, 503, path_prefix=f"{API}/TrackingCategories")
    h.dataverse.fail_next(1, 503)
    first = await h.run(connection.id)
    assert first.outcome == RunOutcome.SUCCEEDED, first.error

    # Run 2 (a few changes): dropped connections on both sides.
    h.clock.advance(2)
    for account in accounts[:3]:
        h.xero.rename_account(NZ_TENANT_ID, account["AccountID"], f"{account['Name']} (renamed)")
    h.xero.add_branding_theme(NZ_TENANT_ID, Name="Second theme")
    h.xero.drop_next(1, path_prefix=f"{API}/TaxRates")
    h.dataverse.drop_next(1)
    second = await h.run(connection.id)
    assert second.outcome == RunOutcome.SUCCEEDED, second.error
    assert second.counts["accounts"].updated == 3
    assert second.counts["branding_themes"].created == 1

    # Run 3: a 500 from Xero, a 429 with Retry-After from Dataverse.
    h.clock.advance(2)
    h.xero.rename_account(NZ_TENANT_ID, accounts[4]["AccountID"], "Renamed again")
    h.xero.fail_next(1, 500, path_prefix=f"{API}/Organisation")
    h.dataverse.fail_next(1, 429, retry_after=1)
    third = await h.run(connection.id)
    assert third.outcome == RunOutcome.SUCCEEDED, third.error
    assert third.counts["accounts"].updated == 1

    xero_calls = [r for r in h.xero.requests[xero_mark:] if r.path.startswith(API)]
    dv_calls = h.dataverse.requests[dv_mark:]
    failed = [r for r in xero_calls if r.status != 200] + [
        r for r in dv_calls if r.status >= 400 or r.status == 0
    ]
    assert len(failed) == 7
    assert len(failed) / (len(xero_calls) + len(dv_calls)) >= 0.2
    await assert_dynamics_matches_xero(h, connection)
    # And the next run finds nothing to do: every fingerprint matches what landed.
    quiet = await h.run(connection.id)
    assert sum(c.changed for c in quiet.counts.values()) == 0


async def test_one_dataverse_call_per_table_per_thousand_changed_records(h: Harness) -> None:
    tenant_id = h.xero.generate_org("Big Books Ltd", accounts=2500)
    connection = await h.connect(tenant_id=tenant_id)
    api_mark, dv_mark = len(xero_api_calls(h)), len(h.dataverse.requests)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    assert run.counts["accounts"].created == len(h.xero.accounts(tenant_id)) == 2500
    assert len(xero_api_calls(h)) - api_mark == 5
    writes = synced_writes(h.dataverse.requests[dv_mark:])
    per_set = Counter(r.path.split("/")[-2] for r in writes)
    assert per_set == {
        "xdc_chartofaccountses": 3,
        "xdc_taxtypes": 1,
        "xdc_brandingthemes": 1,
        "xdc_trackingcategories": 1,
        "xdc_trackingoptions": 1,
    }
    # The Connector row, then nothing else.
    assert run.dataverse_calls == len(writes) + 1


async def test_a_record_dataverse_rejects_fails_alone_and_is_retried(h: Harness) -> None:
    connection = await h.connect()
    bad = h.xero.add_branding_theme(NZ_TENANT_ID, Name="Oversized Theme", SortOrder=2**31 + 5)
    themes = h.xero.branding_themes(NZ_TENANT_ID)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.PARTIAL
    assert run.counts["branding_themes"].failed == 1
    assert run.counts["branding_themes"].created == len(themes) - 1
    assert run.counts["accounts"].created == len(h.xero.accounts(NZ_TENANT_ID))
    [failure] = run.failures
    assert (failure.entity, failure.key) == ("branding_themes", bad)
    assert record_failure_words(failure).startswith("Dataverse rejected the record: ")
    # The reason says what Dataverse said, without the record's values.
    assert "Oversized" not in failure.reason
    assert str(2**31 + 5) not in failure.reason
    saved = await h.connection(connection.id)
    assert saved.consecutive_failures == 0
    assert saved.last_outcome == RunOutcome.PARTIAL

    # Not fingerprinted, so tried again (and only it) until Xero's value is fixed.
    again = await h.run(connection.id)
    assert again.counts["branding_themes"].failed == 1
    assert sum(c.changed for c in again.counts.values()) == 0
    h.xero.update_branding_theme(NZ_TENANT_ID, bad, SortOrder=7)
    fixed = await h.run(connection.id)
    assert fixed.outcome == RunOutcome.SUCCEEDED
    assert fixed.counts["branding_themes"].created == 1
    await assert_dynamics_matches_xero(h, connection)
