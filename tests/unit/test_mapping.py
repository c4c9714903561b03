"""The pure mapping Xero -> our Dataverse tables."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bot.sync.failures import record_refusal, scrub
from bot.sync.mapping import (
    account_row,
    branding_theme_row,
    component_text,
    connector_bind,
    dv_datetime,
    inactive_row,
    key_column,
    map_accounts,
    row_key,
    row_values,
    tax_rate_row,
)
from bot.sync.tables import (
    BRANDING_THEME,
    CHART_OF_ACCOUNTS,
    SYNCED_TABLES,
    TAX_TYPE,
    RecordState,
)
from bot.sync.xero_models import Account, BrandingTheme, TaxComponent, TaxRate
from cards.failure_words import record_refusal_words

CONNECTOR = "6a0c1f38-3a55-4c7f-8d7c-0f5f5b0c1a11"
BIND = "xdc_ConnectorId@odata.bind"  # the lookup's schema name: navigation properties are case-sensitive


def account(**extra: object) -> Account:
    body: dict[str, object] = {
        "AccountID": "ebd06280-af70-4bed-97c6-7451a454ad85",
        "Code": "200",
        "Name": "Sales",
        "Type": "REVENUE",
        "Class": "REVENUE",
        "Status": "ACTIVE",
        "TaxType": "OUTPUT2",
        "Description": "Income from any normal business activity",
        "EnablePaymentsToAccount": False,
        "ShowInExpenseClaims": False,
        "ReportingCode": "REV.TRA.GOO",
        "ReportingCodeName": "Sale of goods",
        "UpdatedDateUTC": "/Date(1439434356790+0000)/",
    }
    body.update(extra)
    return Account.model_validate(body)


def test_account_row_has_every_column_and_the_connector_bind() -> None:
    row = account_row(account(), CONNECTOR)
    assert row[BIND] == f"/xdc_connectors({CONNECTOR})"
    assert row["xdc_xeroaccountid"] == "ebd06280-af70-4bed-97c6-7451a454ad85"
    assert row["xdc_code"] == "200"
    assert row["xdc_name"] == "Sales"
    assert row["xdc_type"] == "REVENUE"
    assert row["xdc_class"] == "REVENUE"
    assert row["xdc_status"] == "ACTIVE"
    assert row["xdc_taxtype"] == "OUTPUT2"
    assert row["xdc_reportingcodename"] == "Sale of goods"
    assert row["xdc_enablepaymentstoaccount"] is False
    assert row["xdc_xeroupdatedutc"] == "2015-08-13T02:52:36Z"
    assert row["xdc_recordstate"] == RecordState.ACTIVE.value
    assert type(row["xdc_recordstate"]) is int
    # Only real columns (plus the bind), so Dataverse never sees an unknown attribute.
    assert set(row) - {BIND} <= set(CHART_OF_ACCOUNTS.column_names)


def test_archived_and_deleted_accounts_keep_their_status_and_are_present() -> None:
    for status in ("ARCHIVED", "DELETED"):
        row = account_row(account(Status=status), CONNECTOR)
        assert row["xdc_status"] == status
        assert row["xdc_recordstate"] == RecordState.ACTIVE.value


def test_text_is_cut_to_the_column_length() -> None:
    row = account_row(account(Name="N" * 400, Description="D" * 5000, Code="12345678901234"), CONNECTOR)
    assert len(row["xdc_name"]) == 150
    assert len(row["xdc_description"]) == 4000
    assert len(row["xdc_code"]) == 10


def test_bank_account_without_code_or_name_still_has_a_name() -> None:
    row = account_row(
        Account.model_validate(
            {"AccountID": "a1", "Type": "BANK", "BankAccountNumber": "0123", "Code": None}
        ),
        CONNECTOR,
    )
    assert row["xdc_code"] is None
    assert row["xdc_name"] == "a1"
    assert row["xdc_bankaccountnumber"] == "0123"


def test_tax_rate_row_with_components_and_decimal_rates() -> None:
    rate = TaxRate.model_validate(
        {
            "Name": "GST on Income",
            "TaxType": "OUTPUT2",
            "ReportTaxType": "OUTPUT",
            "CanApplyToRevenue": True,
            "CanApplyToExpenses": False,
            "DisplayTaxRate": Decimal("15.0000"),
            "EffectiveRate": Decimal("15.0000"),
            "Status": "ACTIVE",
            "TaxComponents": [
                {"Name": "GST", "Rate": Decimal("15.0000"), "IsCompound": False, "IsNonRecoverable": False}
            ],
        }
    )
    row = tax_rate_row(rate, CONNECTOR)
    assert row["xdc_xerotaxtype"] == "OUTPUT2"
    assert row["xdc_name"] == "GST on Income"
    assert row["xdc_effectiverate"] == 15.0
    assert row["xdc_displayrate"] == 15.0
    assert row["xdc_components"] == "GST 15.0000%"
    assert row["xdc_canapplytorevenue"] is True
    assert row["xdc_canapplytoexpenses"] is False
    assert row["xdc_reporttaxtype"] == "OUTPUT"
    assert set(row) - {BIND} <= set(TAX_TYPE.column_names)


def test_components_render_flags_and_several_lines() -> None:
    compound = TaxComponent(name="State Tax", rate=Decimal("2.25"), is_compound=True, is_non_recoverable=True)
    assert component_text(compound) == "State Tax 2.2500% (compound, non-recoverable)"
    rate = TaxRate(
        tax_type="TAX002",
        name="Combined",
        tax_components=(TaxComponent(name="City", rate=Decimal("1.5")), compound),
        effective_rate=Decimal("3.7838"),
    )
    row = tax_rate_row(rate, CONNECTOR)
    assert row["xdc_components"] == "City 1.5000%\nState Tax 2.2500% (compound, non-recoverable)"
    assert row["xdc_effectiverate"] == 3.7838
    assert row["xdc_displayrate"] is None


def test_branding_theme_row() -> None:
    theme = BrandingTheme.model_validate(
        {
            "BrandingThemeID": "dfe23d27-a3a6-4ef3-a5ca-b9e02b142dde",
            "Name": "Special Projects",
            "LogoUrl": "https://in.xero.com/logo?id=abc",
            "Type": "INVOICE",
            "SortOrder": 1,
            "CreatedDateUTC": "/Date(946684800000+0000)/",
        }
    )
    row = branding_theme_row(theme, CONNECTOR)
    assert row["xdc_xerobrandingthemeid"] == "dfe23d27-a3a6-4ef3-a5ca-b9e02b142dde"
    assert row["xdc_sortorder"] == 1
    assert row["xdc_type"] == "INVOICE"
    assert row["xdc_xerocreatedutc"] == "2000-01-01T00:00:00Z"
    assert set(row) - {BIND} <= set(BRANDING_THEME.column_names)


def test_keys_follow_the_alternate_key_of_each_table() -> None:
    for table in SYNCED_TABLES:
        key = row_key(table, CONNECTOR, "K1")
        assert tuple(key) == table.alternate_key
        assert key[table.connector_lookup] == CONNECTOR
        assert key[key_column(table)] == "K1"


def test_inactive_row_only_changes_the_state() -> None:
    row = inactive_row(CHART_OF_ACCOUNTS, CONNECTOR, "gone")
    assert row == {
        BIND: connector_bind(CONNECTOR),
        "xdc_xeroaccountid": "gone",
        "xdc_recordstate": RecordState.INACTIVE.value,
    }


def test_map_accounts_by_xero_key() -> None:
    rows = map_accounts([account(), account(AccountID="b2", Name="Other")], CONNECTOR)
    assert set(rows) == {"ebd06280-af70-4bed-97c6-7451a454ad85", "b2"}


def test_dates_are_utc_with_z() -> None:
    assert dv_datetime(datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)) == "2024-05-01T10:00:00Z"
    assert dv_datetime(None) is None


def test_error_reasons_quote_no_values() -> None:
    row = account_row(account(Name="Secret Sales Ledger", Code="4711"), CONNECTOR)
    message = (
        "The length of the 'xdc_name' attribute exceeded; value 'Secret Sales Ledger' "
        "for code 4711 (Secret Sales Ledger) is invalid"
    )
    reason = record_refusal_words(*record_refusal(message, 400, row_values(row)))
    assert reason.startswith("Dataverse rejected the record: ")
    assert "'xdc_name'" in reason  # our own column names stay: they say what to fix
    assert "Secret" not in reason
    assert "4711" not in reason
    assert scrub('name "abc" too long') == "name '…' too long"
    assert len(scrub("x" * 1000)) <= 300
