"""One run of one connection against the three sandboxes: what lands in Dynamics, and what does not."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.storage.base import ConnectionStatus, Provider, RunOutcome
from bot.sync.mapping import components_text
from bot.sync.ports import AttentionReason
from bot.sync.tables import (
    BRANDING_THEME,
    CHART_OF_ACCOUNTS,
    CONNECTOR,
    TAX_TYPE,
    RecordState,
    RunOutcomeChoice,
)
from bot.sync.xero_models import TaxComponent
from cards.failure_words import run_error_words
from sandbox.xero.seed import DEMO_EMAIL, NZ_TENANT_ID
from tests.integration.harness import Harness, open_harness, synced_writes, xero_api_calls

pytestmark = pytest.mark.timeout(60)


def by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]): r for r in rows}


async def test_first_run_creates_every_record_with_the_right_values(h: Harness) -> None:
    connection = await h.connect()
    api_before = len(xero_api_calls(h))
    writes_before = len(h.dataverse.requests)
    run = await h.run(connection.id, "setup")

    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    assert run.full_pass
    xero_accounts = h.xero.accounts(NZ_TENANT_ID)
    xero_rates = h.xero.tax_rates(NZ_TENANT_ID)
    xero_themes = h.xero.branding_themes(NZ_TENANT_ID)
    assert run.counts["accounts"].created == len(xero_accounts) > 20
    assert run.counts["tax_rates"].created == len(xero_rates) > 3
    assert run.counts["branding_themes"].created == len(xero_themes) >= 1
    # At most 5 Xero calls, and one Dataverse write per table (the counts are far below 1,000).
    assert len(xero_api_calls(h)) - api_before == run.xero_calls <= 5
    writes = synced_writes(h.dataverse.requests[writes_before:])
    assert len(writes) == 5

    accounts = by(await h.rows(CHART_OF_ACCOUNTS, connection), "xdc_xeroaccountid")
    assert len(accounts) == len(xero_accounts)
    for account in xero_accounts:
        row = accounts[account["AccountID"]]
        assert row["xdc_name"] == account["Name"]
        assert (row["xdc_code"] or "") == (account.get("Code") or "")
        assert row["xdc_type"] == account["Type"]
        assert row["xdc_status"] == account["Status"]
        assert row["xdc_taxtype"] == account.get("TaxType")
        assert row["xdc_recordstate"] == RecordState.ACTIVE
    archived = [a for a in xero_accounts if a["Status"] == "ARCHIVED"]
    assert archived, "the seed has archived accounts"
    assert all(accounts[a["AccountID"]]["xdc_status"] == "ARCHIVED" for a in archived)

    rates = by(await h.rows(TAX_TYPE, connection), "xdc_xerotaxtype")
    assert set(rates) == {r["TaxType"] for r in xero_rates}
    for rate in xero_rates:
        row = rates[rate["TaxType"]]
        assert row["xdc_name"] == rate["Name"]
        assert Decimal(str(row["xdc_effectiverate"])) == Decimal(rate["EffectiveRate"])
        assert Decimal(str(row["xdc_displayrate"])) == Decimal(rate["DisplayTaxRate"])
        components = [TaxComponent.model_validate(c) for c in rate.get("TaxComponents", [])]
        assert row["xdc_components"] == components_text(components)

    themes = by(await h.rows(BRANDING_THEME, connection), "xdc_xerobrandingthemeid")
    assert {t: themes[t]["xdc_name"] for t in themes} == {
        t["BrandingThemeID"]: t["Name"] for t in xero_themes
    }

    connector = await h.connector_row(connection)
    assert connector["xdc_lastoutcome"] == RunOutcomeChoice.SUCCEEDED
    assert connector["xdc_lastrunutc"]
    saved = await h.connection(connection.id)
    assert saved.last_outcome == RunOutcome.SUCCEEDED
    assert saved.accounts_modified_since is not None
    assert saved.last_full_pass_at == run.started_at
    assert saved.xero_day_remaining is not None
    assert h.notifier.kinds()[0] == "run_started"
    assert h.notifier.kinds()[-1] == "run_finished"
    assert [c.stage for c in h.notifier.calls if c.kind == "run_progress"] == [
        "read_xero",
        "wrote_accounts",
        "wrote_tax_rates",
        "wrote_branding_themes",
        "wrote_tracking",
    ]


async def test_a_second_run_writes_nothing(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    mark = len(h.dataverse.requests)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED
    assert not run.full_pass  # incremental: the accounts call carried If-Modified-Since
    assert all(c.changed == 0 and c.failed == 0 for c in run.counts.values())
    assert run.counts["tax_rates"].unchanged == len(h.xero.tax_rates(NZ_TENANT_ID))
    assert synced_writes(h.dataverse.requests[mark:]) == []
    # Only the Connector row's "last run" is written.
    others = [r for r in h.dataverse.requests[mark:] if r.method != "GET"]
    assert [r.path.rsplit("/", 1)[-1].split("(")[0] for r in others] == [CONNECTOR.entity_set]
    accounts_call = [r for r in xero_api_calls(h) if r.path.endswith("/Accounts")][-1]
    assert "If-Modified-Since" in accounts_call.headers


async def test_renaming_one_account_updates_exactly_that_row(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    target = h.xero.accounts(NZ_TENANT_ID)[5]
    h.clock.advance(2)  # Xero's UpdatedDateUTC is to the second
    h.xero.rename_account(NZ_TENANT_ID, target["AccountID"], "Renamed for the test")
    run = await h.run(connection.id)
    assert run.counts["accounts"].updated == 1
    assert run.counts["accounts"].created == 0
    assert sum(c.changed for c in run.counts.values()) == 1
    rows = by(await h.rows(CHART_OF_ACCOUNTS, connection), "xdc_xeroaccountid")
    assert rows[target["AccountID"]]["xdc_name"] == "Renamed for the test"
    assert len(rows) == len(h.xero.accounts(NZ_TENANT_ID))


async def test_archived_accounts_update_and_removed_ones_become_inactive(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    active = [a for a in h.xero.accounts(NZ_TENANT_ID) if a["Status"] == "ACTIVE"]
    archived, removed = active[3], active[4]
    h.clock.advance(2)
    h.xero.archive_account(NZ_TENANT_ID, archived["AccountID"])
    h.xero.delete_account(NZ_TENANT_ID, removed["AccountID"])

    incremental = await h.run(connection.id)
    assert not incremental.full_pass
    assert incremental.counts["accounts"].updated == 1
    assert incremental.counts["accounts"].deactivated == 0  # an incremental read cannot see removals

    full = await h.run(connection.id, full_pass=True)
    assert full.full_pass
    assert full.counts["accounts"].deactivated == 1
    assert full.counts["accounts"].updated == 0
    rows = by(await h.rows(CHART_OF_ACCOUNTS, connection), "xdc_xeroaccountid")
    assert rows[archived["AccountID"]]["xdc_status"] == "ARCHIVED"
    assert rows[archived["AccountID"]]["xdc_recordstate"] == RecordState.ACTIVE
    # Never deleted: still there, with its last values, marked inactive.
    assert rows[removed["AccountID"]]["xdc_recordstate"] == RecordState.INACTIVE
    assert rows[removed["AccountID"]]["xdc_name"] == removed["Name"]

    again = await h.run(connection.id, full_pass=True)
    assert sum(c.changed for c in again.counts.values()) == 0


async def test_a_row_deleted_in_dynamics_is_written_again_by_the_next_full_pass(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    victim = h.xero.accounts(NZ_TENANT_ID)[2]["AccountID"]
    # Someone deletes the row in Dynamics (straight in the sandbox's tables).
    env = h.dataverse.env(connection.dataverse_env_url.rstrip("/").rsplit("/", 1)[-1])
    table = env.tables[CHART_OF_ACCOUNTS.entity_set]
    [row_id] = [rid for rid, row in table.rows.items() if row.get("xdc_xeroaccountid") == victim]
    table.remove(row_id)
    incremental = await h.run(connection.id)
    assert sum(c.changed for c in incremental.counts.values()) == 0  # an incremental run cannot know
    full = await h.run(connection.id, full_pass=True)
    assert full.counts["accounts"].created == 1
    assert full.counts["accounts"].updated == 0
    rows = by(await h.rows(CHART_OF_ACCOUNTS, connection), "xdc_xeroaccountid")
    assert victim in rows
    assert len(rows) == len(h.xero.accounts(NZ_TENANT_ID))


async def test_a_full_pass_comes_round_once_a_day(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    assert not (await h.run(connection.id)).full_pass
    saved = await h.connection(connection.id)
    assert saved.last_full_pass_at is not None
    await h.store.save_connection(
        saved.model_copy(update={"last_full_pass_at": saved.last_full_pass_at - timedelta(hours=25)})
    )
    assert (await h.run(connection.id)).full_pass


async def test_removed_tax_rates_and_themes_become_inactive_on_any_run(h: Harness) -> None:
    connection = await h.connect()
    await h.run(connection.id)
    theme = h.xero.branding_themes(NZ_TENANT_ID)[-1]
    h.xero.delete_branding_theme(NZ_TENANT_ID, theme["BrandingThemeID"])
    run = await h.run(connection.id)
    assert not run.full_pass
    assert run.counts["branding_themes"].deactivated == 1
    rows = by(await h.rows(BRANDING_THEME, connection), "xdc_xerobrandingthemeid")
    assert rows[theme["BrandingThemeID"]]["xdc_recordstate"] == RecordState.INACTIVE


async def test_an_access_token_expiring_mid_run_is_refreshed_once(h: Harness) -> None:
    connection = await h.connect()
    h.xero.set_latency(0.15)
    task = asyncio.create_task(h.run(connection.id))
    # Wait until the run has made its first Accounting call, then expire every access token.
    for _ in range(200):
        if xero_api_calls(h):
            break
        await asyncio.sleep(0.01)
    h.xero.expire_access_tokens()
    run = await task
    assert run.outcome == RunOutcome.SUCCEEDED, run.error
    refreshes = [
        r
        for r in h.xero.requests
        if r.path == "/connect/token" and r.form.get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1
    assert [r.status for r in xero_api_calls(h)].count(401) == 1
    assert run.counts["accounts"].created == len(h.xero.accounts(NZ_TENANT_ID))


async def test_a_failing_notifier_never_fails_the_run(h: Harness) -> None:
    connection = await h.connect()
    h.notifier.fail = True
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED
    assert "run_finished" in h.notifier.kinds()


async def test_a_disconnected_tenant_needs_attention_and_stops_the_schedule(h: Harness) -> None:
    connection = await h.connect()
    h.xero.disconnect(DEMO_EMAIL, NZ_TENANT_ID)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.FAILED
    assert "Reconnect Xero" in run_error_words(run)
    assert AttentionReason.TENANT_DISCONNECTED in h.notifier.attention()
    # The stored record says it as types too (the watcher and the cards read these, not the words).
    stored = await h.store.get_run(run.id)
    assert stored is not None
    assert (stored.failed_provider, stored.attention) == (Provider.XERO, AttentionReason.TENANT_DISCONNECTED)
    saved = await h.connection(connection.id)
    assert saved.status == ConnectionStatus.NEEDS_RECONNECTION
    assert saved.next_run_at is None
    connector = await h.connector_row(connection)
    assert connector["xdc_lastoutcome"] == RunOutcomeChoice.FAILED
    # Skipped from now on, until reconnected.
    assert (await h.run(connection.id)).outcome == RunOutcome.SKIPPED


async def test_revoked_xero_tokens_ask_for_a_reconnect(h: Harness) -> None:
    connection = await h.connect()
    h.xero.revoke_user_tokens(DEMO_EMAIL)
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.FAILED
    assert AttentionReason.XERO_RECONNECT in h.notifier.attention()
    assert (await h.connection(connection.id)).status == ConnectionStatus.NEEDS_RECONNECTION
    assert (run.failed_provider, run.attention) == (Provider.XERO, AttentionReason.XERO_RECONNECT)


async def test_three_failures_in_a_row_need_attention_once(h: Harness) -> None:
    connection = await h.connect()
    h.xero.fail_next(4, 400, path_prefix="/api.xro/2.0/Organisation")
    for _ in range(4):
        run = await h.run(connection.id)
        assert run.outcome == RunOutcome.FAILED
        assert run_error_words(run).startswith("Xero answered with an error")
    assert h.notifier.attention().count(AttentionReason.REPEATED_FAILURES) == 1
    assert (await h.connection(connection.id)).consecutive_failures == 4
    assert (await h.run(connection.id)).outcome == RunOutcome.SUCCEEDED
    assert (await h.connection(connection.id)).consecutive_failures == 0


async def test_low_daily_allowance_needs_attention(tmp_path: Path) -> None:
    async with open_harness(tmp_path, day_limit_warning=100_000) as h:
        connection = await h.connect()
        await h.run(connection.id)
        await h.run(connection.id)
        assert h.notifier.attention().count(AttentionReason.XERO_DAILY_LIMIT) == 1


async def test_no_financial_data_in_the_store(h: Harness) -> None:
    connection = await h.connect()
    run = await h.run(connection.id)
    assert run.outcome == RunOutcome.SUCCEEDED
    names: set[str] = set()
    codes: set[str] = set()
    for account in h.xero.accounts(NZ_TENANT_ID):
        names.add(account["Name"])
        if account.get("Code"):
            codes.add(account["Code"])
        if account.get("Description"):
            names.add(account["Description"])
    names |= {r["Name"] for r in h.xero.tax_rates(NZ_TENANT_ID)}
    names |= {t["Name"] for t in h.xero.branding_themes(NZ_TENANT_ID)}
    dump = "\n".join(f"{key}\n{value.decode('utf-8', 'replace')}" for key, value in await h.store.dump_all())
    assert len(dump) > 1000  # the scan sees the runs, fingerprints and connection

    def present(text: str) -> bool:
        # As a whole word: "GST" inside the TaxType id "GSTONIMPORTS" or "Rates" in "tax_rates" is no leak.
        return (
            re.search(rf"(?<![0-9A-Za-z_]){re.escape(text)}(?![0-9A-Za-z_])", dump, re.IGNORECASE) is not None
        )

    assert sorted(n for n in names if present(n)) == []
    assert sorted(c for c in codes if present(c)) == []
