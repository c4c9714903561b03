"""Xero's dates and the typed models, checked against the examples in Xero's own OpenAPI spec."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from bot.sync.xero_models import (
    Account,
    AccountStatus,
    AccountType,
    BrandingTheme,
    Organisation,
    TaxRate,
    TenantType,
    XeroConnection,
    parse_xero_date,
    parse_xero_datetime,
)

SPECS = Path(__file__).resolve().parents[2] / "specs" / "xero"


@pytest.fixture(scope="module")
def accounting() -> dict[str, Any]:
    with (SPECS / "xero_accounting.yaml").open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


def example(spec: dict[str, Any], path: str) -> dict[str, Any]:
    body: dict[str, Any] = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    return body


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/Date(1439434356790)/", datetime(2015, 8, 13, 2, 52, 36, 790000, tzinfo=UTC)),
        ("/Date(1419937200000+0000)/", datetime(2014, 12, 30, 11, 0, tzinfo=UTC)),
        # The offset is display information: the milliseconds are UTC already.
        ("/Date(1419937200000+1300)/", datetime(2014, 12, 30, 11, 0, tzinfo=UTC)),
        ("/Date(1419937200000-05)/", datetime(2014, 12, 30, 11, 0, tzinfo=UTC)),
        ("/Date(0+0000)/", datetime(1970, 1, 1, tzinfo=UTC)),
        ("/Date(-86400000)/", datetime(1969, 12, 31, tzinfo=UTC)),
        ("/Date(-62135596800000)/", datetime(1, 1, 1, tzinfo=UTC)),
        (r"\/Date(1584585851380)\/", datetime(2020, 3, 19, 2, 44, 11, 380000, tzinfo=UTC)),
    ],
)
def test_parse_xero_date(raw: str, expected: datetime) -> None:
    parsed = parse_xero_date(raw)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("raw", ["", "Date(1)", "/Date()/", "/Date(abc)/", "2020-01-01", "/Date(1)/x",
                                 "/Date(99999999999999999999)/"])
def test_parse_xero_date_rejects(raw: str) -> None:
    with pytest.raises(ValueError, match=r"[Dd]ate"):
        parse_xero_date(raw)


def test_parse_connection_datetime_seven_fraction_digits() -> None:
    parsed = parse_xero_datetime("2020-03-18T21:20:07.7179250")
    assert parsed == datetime(2020, 3, 18, 21, 20, 7, 717925, tzinfo=UTC)
    assert parse_xero_datetime("2020-03-18T21:20:07Z") == datetime(2020, 3, 18, 21, 20, 7, tzinfo=UTC)
    assert parse_xero_datetime("2020-03-18T23:20:07.5+02:00") == datetime(2020, 3, 18, 21, 20, 7, 500000, tzinfo=UTC)


def test_accounts_spec_example(accounting: dict[str, Any]) -> None:
    body = example(accounting, "/Accounts")
    accounts = [Account.model_validate(item) for item in body["Accounts"]]
    bank, sales = accounts
    assert bank.account_id == "ebd06280-af70-4bed-97c6-7451a454ad85"
    assert bank.code == "091"
    assert bank.type == AccountType.BANK
    assert bank.bank_account_type == "BANK"
    assert bank.currency_code == "NZD"
    assert sales.tax_type == "OUTPUT2"
    assert sales.description == "Income from any normal business activity"
    assert sales.updated_date_utc is None


def test_account_put_example_with_dates_and_class(accounting: dict[str, Any]) -> None:
    body = accounting["paths"]["/Accounts"]["put"]["responses"]["200"]["content"]["application/json"]["example"]
    account = Account.model_validate(body["Accounts"][0])
    assert account.account_class == "EXPENSE"
    assert account.status == AccountStatus.ACTIVE
    assert account.reporting_code == "EXP"
    assert account.updated_date_utc == datetime(2019, 2, 21, 23, 59, 9, 320000, tzinfo=UTC)


def test_tax_rates_spec_example(accounting: dict[str, Any]) -> None:
    rates = [TaxRate.model_validate(item) for item in example(accounting, "/TaxRates")["TaxRates"]]
    assert [r.tax_type for r in rates] == ["INPUT2", "OUTPUT2", "GSTONIMPORTS", "NONE", "ZERORATED"]
    gst = rates[0]
    assert gst.effective_rate == Decimal("15")
    assert isinstance(gst.effective_rate, Decimal)
    assert gst.tax_components[0].name == "GST"
    assert gst.tax_components[0].rate == Decimal("15")
    assert gst.can_apply_to_revenue is False
    assert gst.report_tax_type == "INPUT"


def test_tax_rate_keeps_exact_decimals_from_json_text() -> None:
    raw = '{"TaxType":"TAX001","Name":"Odd","EffectiveRate":12.3456,"TaxComponents":[{"Name":"A","Rate":0.1}]}'
    rate = TaxRate.model_validate(json.loads(raw, parse_float=Decimal))
    assert rate.effective_rate == Decimal("12.3456")
    assert rate.tax_components[0].rate == Decimal("0.1")


def test_branding_themes_spec_example(accounting: dict[str, Any]) -> None:
    themes = [BrandingTheme.model_validate(t) for t in example(accounting, "/BrandingThemes")["BrandingThemes"]]
    assert themes[0].branding_theme_id == "dabc7637-62c1-4941-8a6e-ee44fa5090e7"
    assert themes[0].sort_order == 0
    assert themes[0].created_date_utc == datetime(2016, 6, 3, 15, 27, 23, 813000, tzinfo=UTC)


def test_organisation_spec_example(accounting: dict[str, Any]) -> None:
    org = Organisation.model_validate(example(accounting, "/Organisation")["Organisations"][0])
    assert org.organisation_id == "b2c885a9-4bb9-4a00-9b6e-6c2bf60b1a2b"
    assert org.timezone == "NEWZEALANDSTANDARDTIME"
    assert org.iana_timezone == "Pacific/Auckland"
    assert org.short_code == "!mBdtL"
    assert org.financial_year_end_month == 3
    assert org.organisation_class == "PREMIUM"
    assert org.created_date_utc == datetime(2016, 2, 18, 20, 29, 53, tzinfo=UTC)


def test_connections_spec_example() -> None:
    with (SPECS / "xero-identity.yaml").open(encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    raw = spec["paths"]["/Connections"]["get"]["responses"]["200"]["content"]["application/json"]["example"]
    (connection,) = [XeroConnection.model_validate(item) for item in json.loads(raw)]
    assert connection.id == "7cb59f93-2964-421d-bb5e-a0f7a4572a44"
    assert connection.tenant_id == "fe79f7dd-b6d4-4a92-ba7b-538af6289c58"
    assert connection.tenant_type == TenantType.ORGANISATION
    assert connection.tenant_name == "Demo Company (NZ)"
    assert connection.created_date_utc == datetime(2019, 12, 7, 18, 46, 19, 516540, tzinfo=UTC)


def test_connection_without_name_or_auth_event() -> None:
    connection = XeroConnection.model_validate(
        {"id": "c", "tenantId": "t", "tenantType": "PRACTICE", "tenantName": None,
         "createdDateUtc": "2020-03-18T21:20:07.7179250", "updatedDateUtc": "2020-03-18T21:20:07.7179250"}
    )
    assert connection.tenant_name == ""
    assert connection.auth_event_id is None
    assert connection.tenant_type == TenantType.PRACTICE


def test_unknown_enum_values_are_kept_as_strings() -> None:
    account = Account.model_validate(
        {"AccountID": "a", "Type": "CRYPTO", "Status": "FROZEN", "Class": "ASSET", "BankAccountType": ""}
    )
    assert account.type == "CRYPTO"
    assert not isinstance(account.type, AccountType)
    assert account.status == "FROZEN"
    assert account.account_class == "ASSET"
    assert account.bank_account_type == ""
    rate = TaxRate.model_validate({"TaxType": "X", "Status": "SOMETHINGNEW", "ReportTaxType": "NEWTYPE"})
    assert rate.status == "SOMETHINGNEW"


def test_models_are_frozen_and_need_their_keys() -> None:
    account = Account.model_validate({"AccountID": "a", "Code": None, "Name": None})
    assert account.code == ""
    assert account.name == ""
    with pytest.raises(ValidationError):
        account.name = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Account.model_validate({"Code": "200"})
    with pytest.raises(ValidationError):
        TaxRate.model_validate({"Name": "no key"})
    with pytest.raises(ValidationError):
        Account.model_validate({"AccountID": "a", "UpdatedDateUTC": "/Date(nope)/"})


def test_models_accept_snake_case_names() -> None:
    account = Account(account_id="a", code="200", type="REVENUE")
    assert account.type == AccountType.REVENUE
    assert account.model_dump(by_alias=True)["AccountID"] == "a"
