"""Typed, frozen views of what Xero returns: Accounts, TaxRates, BrandingThemes, TrackingCategories,
Organisation, connections.

Field names are snake_case; Xero's PascalCase (camelCase for /connections) are the aliases, so
`Account.model_validate(xero_json)` works and `Account(account_id=...)` too. Every field but the key
is optional, as in the spec. Enum-like fields are typed `str`: known values become `StrEnum` members
(so `account.type == AccountType.BANK` reads well), values Xero adds later stay plain strings rather
than failing the whole pull.

Dates come in Microsoft's JSON format, `/Date(1439434356790)/` or `/Date(1419937200000+0000)/`: the
number is epoch milliseconds in UTC (it may be negative); the offset only says how Xero would display
it, so it is not applied. /connections uses `2020-03-18T21:20:07.7179250` (7 fraction digits, UTC,
no `Z`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from bot.sync.timezones import xero_timezone_to_iana

_MS_DATE = re.compile(r"^\\?/Date\((?P<ms>-?\d+)(?P<tz>[+-]\d{2,4})?\)\\?/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ISO_FRACTION = re.compile(r"^(?P<head>[^.]+)\.(?P<frac>\d+)(?P<tail>.*)$")


def parse_xero_date(value: str) -> datetime:
    """`/Date(1439434356790)/`, `/Date(1419937200000+0000)/`, `/Date(-62135596800000)/` -> aware UTC."""
    match = _MS_DATE.match(value.strip())
    if match is None:
        raise ValueError(f"not a Xero /Date(...)/ value: {value[:40]!r}")
    # Adding a timedelta (not fromtimestamp) keeps negative values portable across platforms.
    try:
        return _EPOCH + timedelta(milliseconds=int(match.group("ms")))
    except OverflowError:
        raise ValueError(f"out of range for a date: {value[:40]!r}") from None


def parse_xero_datetime(value: str) -> datetime:
    """An ISO date-time as Xero writes them; naive means UTC; more than 6 fraction digits are cut."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    match = _ISO_FRACTION.match(text)
    if match is not None:
        text = f"{match.group('head')}.{match.group('frac')[:6].ljust(6, '0')}{match.group('tail')}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _to_datetime(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        if "Date(" in value:
            return parse_xero_date(value)
        return parse_xero_datetime(value)
    return value


XeroDateTime = Annotated[datetime | None, BeforeValidator(_to_datetime)]
# Text Xero may send as null or leave out: an empty string either way.
Text = Annotated[str, BeforeValidator(lambda value: "" if value is None else value)]


def _known(enum: type[StrEnum]) -> AfterValidator:
    values = {member.value: member for member in enum}

    def convert(value: str | None) -> str | None:
        if value is None:
            return None
        return values.get(value, value)

    return AfterValidator(convert)


class AccountType(StrEnum):
    BANK = "BANK"
    CURRENT = "CURRENT"
    CURRLIAB = "CURRLIAB"
    DEPRECIATN = "DEPRECIATN"
    DIRECTCOSTS = "DIRECTCOSTS"
    EQUITY = "EQUITY"
    EXPENSE = "EXPENSE"
    FIXED = "FIXED"
    INVENTORY = "INVENTORY"
    LIABILITY = "LIABILITY"
    NONCURRENT = "NONCURRENT"
    OTHERINCOME = "OTHERINCOME"
    OVERHEADS = "OVERHEADS"
    PREPAYMENT = "PREPAYMENT"
    REVENUE = "REVENUE"
    SALES = "SALES"
    TERMLIAB = "TERMLIAB"
    PAYG = "PAYG"


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"


class AccountClass(StrEnum):
    ASSET = "ASSET"
    EQUITY = "EQUITY"
    EXPENSE = "EXPENSE"
    LIABILITY = "LIABILITY"
    REVENUE = "REVENUE"


class BankAccountType(StrEnum):
    BANK = "BANK"
    CREDITCARD = "CREDITCARD"
    PAYPAL = "PAYPAL"
    NONE = "NONE"


class TaxRateStatus(StrEnum):
    ACTIVE = "ACTIVE"
    DELETED = "DELETED"
    ARCHIVED = "ARCHIVED"
    PENDING = "PENDING"


class TenantType(StrEnum):
    ORGANISATION = "ORGANISATION"
    PRACTICE = "PRACTICE"


class XeroModel(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class Account(XeroModel):
    account_id: str = Field(alias="AccountID")
    code: Text = Field(default="", alias="Code")  # may be empty on bank accounts
    name: Text = Field(default="", alias="Name")
    type: Annotated[str | None, _known(AccountType)] = Field(default=None, alias="Type")
    status: Annotated[str | None, _known(AccountStatus)] = Field(default=None, alias="Status")
    description: str | None = Field(default=None, alias="Description")
    tax_type: str | None = Field(default=None, alias="TaxType")  # -> TaxRate.tax_type
    account_class: Annotated[str | None, _known(AccountClass)] = Field(default=None, alias="Class")
    system_account: str | None = Field(default=None, alias="SystemAccount")
    bank_account_number: str | None = Field(default=None, alias="BankAccountNumber")
    bank_account_type: Annotated[str | None, _known(BankAccountType)] = Field(
        default=None, alias="BankAccountType"
    )
    currency_code: str | None = Field(default=None, alias="CurrencyCode")
    enable_payments_to_account: bool | None = Field(default=None, alias="EnablePaymentsToAccount")
    show_in_expense_claims: bool | None = Field(default=None, alias="ShowInExpenseClaims")
    add_to_watchlist: bool | None = Field(default=None, alias="AddToWatchlist")
    has_attachments: bool | None = Field(default=None, alias="HasAttachments")
    reporting_code: str | None = Field(default=None, alias="ReportingCode")
    reporting_code_name: str | None = Field(default=None, alias="ReportingCodeName")
    updated_date_utc: XeroDateTime = Field(default=None, alias="UpdatedDateUTC")


class TaxComponent(XeroModel):
    name: Text = Field(default="", alias="Name")
    rate: Decimal | None = Field(default=None, alias="Rate")
    is_compound: bool | None = Field(default=None, alias="IsCompound")
    is_non_recoverable: bool | None = Field(default=None, alias="IsNonRecoverable")


class TaxRate(XeroModel):
    tax_type: str = Field(alias="TaxType")  # the key: INPUT2, OUTPUT2, NONE, TAX001, ...
    name: Text = Field(default="", alias="Name")
    tax_components: tuple[TaxComponent, ...] = Field(default=(), alias="TaxComponents")
    status: Annotated[str | None, _known(TaxRateStatus)] = Field(default=None, alias="Status")
    report_tax_type: str | None = Field(default=None, alias="ReportTaxType")
    can_apply_to_assets: bool | None = Field(default=None, alias="CanApplyToAssets")
    can_apply_to_equity: bool | None = Field(default=None, alias="CanApplyToEquity")
    can_apply_to_expenses: bool | None = Field(default=None, alias="CanApplyToExpenses")
    can_apply_to_liabilities: bool | None = Field(default=None, alias="CanApplyToLiabilities")
    can_apply_to_revenue: bool | None = Field(default=None, alias="CanApplyToRevenue")
    display_tax_rate: Decimal | None = Field(default=None, alias="DisplayTaxRate")
    effective_rate: Decimal | None = Field(default=None, alias="EffectiveRate")


class BrandingTheme(XeroModel):
    branding_theme_id: str = Field(alias="BrandingThemeID")
    name: Text = Field(default="", alias="Name")
    logo_url: str | None = Field(default=None, alias="LogoUrl")
    type: str | None = Field(default=None, alias="Type")  # always INVOICE today
    sort_order: int | None = Field(default=None, alias="SortOrder")  # the default theme has 0
    created_date_utc: XeroDateTime = Field(default=None, alias="CreatedDateUTC")


class TrackingStatus(StrEnum):
    ACTIVE = "ACTIVE"
    ARCHIVED = "ARCHIVED"
    DELETED = "DELETED"  # only in the answer to a DELETE: a deleted category or option leaves every read


class TrackingOption(XeroModel):
    tracking_option_id: str = Field(alias="TrackingOptionID")
    name: Text = Field(default="", alias="Name")
    status: Annotated[str | None, _known(TrackingStatus)] = Field(default=None, alias="Status")


class TrackingCategory(XeroModel):
    """A tracking category (Region, Department) and its options; max 2 ACTIVE per organisation."""

    tracking_category_id: str = Field(alias="TrackingCategoryID")
    name: Text = Field(default="", alias="Name")
    status: Annotated[str | None, _known(TrackingStatus)] = Field(default=None, alias="Status")
    options: tuple[TrackingOption, ...] = Field(default=(), alias="Options")


class Organisation(XeroModel):
    organisation_id: str = Field(alias="OrganisationID")
    name: Text = Field(default="", alias="Name")
    legal_name: str | None = Field(default=None, alias="LegalName")
    short_code: str | None = Field(default=None, alias="ShortCode")
    base_currency: str | None = Field(default=None, alias="BaseCurrency")
    country_code: str | None = Field(default=None, alias="CountryCode")
    version: str | None = Field(default=None, alias="Version")  # AU, NZ, UK, US, GLOBAL, ...
    organisation_type: str | None = Field(default=None, alias="OrganisationType")
    organisation_status: str | None = Field(default=None, alias="OrganisationStatus")
    edition: str | None = Field(default=None, alias="Edition")
    organisation_class: str | None = Field(default=None, alias="Class")
    is_demo_company: bool | None = Field(default=None, alias="IsDemoCompany")
    timezone: str | None = Field(default=None, alias="Timezone")  # e.g. NEWZEALANDSTANDARDTIME
    financial_year_end_day: int | None = Field(default=None, alias="FinancialYearEndDay")
    financial_year_end_month: int | None = Field(default=None, alias="FinancialYearEndMonth")
    created_date_utc: XeroDateTime = Field(default=None, alias="CreatedDateUTC")

    @property
    def iana_timezone(self) -> str | None:
        """The organisation's zone as an IANA name, None if Xero sent none or one we do not know."""
        return xero_timezone_to_iana(self.timezone) if self.timezone else None


class XeroConnection(XeroModel):
    """One tenant the user's consent covers (GET /connections)."""

    id: str  # for DELETE /connections/{id}
    tenant_id: str = Field(alias="tenantId")  # for the xero-tenant-id header
    tenant_type: Annotated[str, _known(TenantType)] = Field(default="ORGANISATION", alias="tenantType")
    tenant_name: Text = Field(default="", alias="tenantName")  # may be absent
    auth_event_id: str | None = Field(default=None, alias="authEventId")
    created_date_utc: XeroDateTime = Field(default=None, alias="createdDateUtc")
    updated_date_utc: XeroDateTime = Field(default=None, alias="updatedDateUtc")
