"""The seeded world: three organisations (NZ, AU, UK), their settings, and the demo users.

Ids are uuid5 values, stable across runs, so tests can name a tenant or an account directly
(`stable_id(NZ_TENANT_ID, "account", "200")` is the NZ org's Sales account).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.xero import charts, taxrates
from sandbox.xero.orgs import Org, stable_id
from sandbox.xero.wire import MsDate


@dataclass(frozen=True)
class DemoUser:
    email: str
    password: str
    first_name: str
    last_name: str

    @property
    def user_id(self) -> str:
        return stable_id("user", self.email)


NZ_ORG_NAME = "Harbourside Trading (NZ)"
AU_ORG_NAME = "Wattle Street Supplies (AU)"
UK_ORG_NAME = "Thames Lane Studio (UK)"
NZ_TENANT_ID = stable_id("org", "NZ")
AU_TENANT_ID = stable_id("org", "AU")
UK_TENANT_ID = stable_id("org", "UK")

DEMO_EMAIL, DEMO_PASSWORD = "demo@xero.example", "Demo-pass-1"
SINGLE_EMAIL, SINGLE_PASSWORD = "single@xero.example", "Single-pass-1"
NOORG_EMAIL, NOORG_PASSWORD = "noorg@xero.example", "Noorg-pass-1"
DEMO_USERS = (
    DemoUser(DEMO_EMAIL, DEMO_PASSWORD, "Dana", "Demo"),
    DemoUser(SINGLE_EMAIL, SINGLE_PASSWORD, "Sam", "Single"),
    DemoUser(NOORG_EMAIL, NOORG_PASSWORD, "Noa", "Noorg"),
)
USER_TENANTS: dict[str, list[str]] = {
    DEMO_EMAIL: [NZ_TENANT_ID, AU_TENANT_ID, UK_TENANT_ID],
    SINGLE_EMAIL: [NZ_TENANT_ID],
    NOORG_EMAIL: [],
}


@dataclass(frozen=True)
class Region:
    country: str
    version: str
    currency: str
    timezone: str
    reporting_codes: bool
    banks: list[charts.BankRow]
    chart: list[charts.ChartRow]
    archived: set[str]
    tax_rates: list[taxrates.TaxRow]
    year_end: tuple[int, int]
    tax_basis: str
    tax_period: str
    tax_number: str
    registration: str
    address: tuple[str, str, str, str]
    phone: tuple[str, str, str]


REGIONS: dict[str, Region] = {
    "NZ": Region("NZ", "NZ", "NZD", "NEWZEALANDSTANDARDTIME", True, charts.NZ_BANKS, charts.NZ_CHART,
                 charts.NZ_ARCHIVED, taxrates.NZ_TAX_RATES, (31, 3), "PAYMENTS", "TWOMONTHS",
                 "111-222-333", "9429041234567", ("12 Quay Street", "Auckland", "Auckland", "1010"),
                 ("64", "9", "3001234")),
    "AU": Region("AU", "AU", "AUD", "AUSEASTERNSTANDARDTIME", True, charts.AU_BANKS, charts.AU_CHART,
                 charts.AU_ARCHIVED, taxrates.AU_TAX_RATES, (30, 6), "ACCRUALS", "QUARTERLY1",
                 "51 824 753 556", "ACN 824 753 556", ("88 Wattle Street", "Ultimo", "NSW", "2007"),
                 ("61", "2", "90001234")),
    "UK": Region("UK", "UK", "GBP", "GMTSTANDARDTIME", False, charts.UK_BANKS, charts.UK_CHART,
                 charts.UK_ARCHIVED, taxrates.UK_TAX_RATES, (31, 12), "ACCRUAL", "QUARTERLY1",
                 "GB123456789", "09876543", ("4 Thames Lane", "London", "Greater London", "SE1 9GF"),
                 ("44", "20", "79460000")),
}

THEMES: list[tuple[str, int, str | None]] = [
    ("Standard", 0, None),
    ("Special Projects", 1, "https://in.xero.com/logo?id=c3BlY2lhbC1wcm9qZWN0cw"),
    ("Very orange invoice!", 2, None),
]
_EPOCH = datetime(2024, 6, 3, 21, 4, 11, 237000, tzinfo=UTC)


def _organisation(tenant_id: str, name: str, region: Region, created: datetime) -> dict[str, Any]:
    street, city, area, postcode = region.address
    country_code, area_code, number = region.phone
    short = "!" + stable_id(tenant_id, "short")[:5]
    record: dict[str, Any] = {
        "APIKey": stable_id(tenant_id, "apikey").replace("-", "")[:30].upper(),
        "Name": name, "LegalName": name.rsplit(" (", 1)[0] + (" Limited" if region.country != "AU" else " Pty Ltd"),
        "PaysTax": True, "Version": region.version, "OrganisationType": "COMPANY",
        "BaseCurrency": region.currency, "CountryCode": "GB" if region.country == "UK" else region.country,
        "IsDemoCompany": False, "OrganisationStatus": "ACTIVE",
        "RegistrationNumber": region.registration, "TaxNumber": region.tax_number,
        "FinancialYearEndDay": region.year_end[0], "FinancialYearEndMonth": region.year_end[1],
        "SalesTaxBasis": region.tax_basis, "SalesTaxPeriod": region.tax_period,
        "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Inclusive",
        "PeriodLockDate": MsDate(datetime(2024, 3, 31, tzinfo=UTC)),
        "CreatedDateUTC": MsDate(created, offset=False),
        "OrganisationEntityType": "COMPANY", "Timezone": region.timezone, "ShortCode": short,
        "OrganisationID": tenant_id, "Edition": "BUSINESS", "Class": "PREMIUM",
        "LineOfBusiness": "Wholesale trade",
        "Addresses": [
            {"AddressType": "STREET", "AddressLine1": street, "City": city, "Region": area,
             "PostalCode": postcode, "Country": {"NZ": "New Zealand", "AU": "Australia"}.get(region.country, "United Kingdom")},
            {"AddressType": "POBOX", "AddressLine1": "PO Box 4021", "City": city, "Region": area,
             "PostalCode": postcode},
        ],
        "Phones": [{"PhoneType": "OFFICE", "PhoneNumber": number, "PhoneAreaCode": area_code,
                    "PhoneCountryCode": country_code}],
        "ExternalLinks": [{"LinkType": "Website", "Url": f"https://{tenant_id[:8]}.example"}],
        "PaymentTerms": {"Bills": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
                         "Sales": {"Day": 14, "Type": "DAYSAFTERBILLDATE"}},
    }
    return record


def _account_fields(region: Region) -> Iterable[tuple[str, dict[str, Any]]]:
    """(id key, fields) for the region's bank accounts and chart, in Xero's order."""
    for code, name, number, bank_type, currency, status in region.banks:
        fields: dict[str, Any] = {"Code": code, "Name": name, "Type": "BANK", "BankAccountType": bank_type,
                                  "CurrencyCode": currency, "Status": status,
                                  "TaxType": "NONE" if region.country != "AU" else "BASEXCLUDED",
                                  "EnablePaymentsToAccount": bank_type != "NONE"}
        if number:
            fields["BankAccountNumber"] = number
        yield code or name, fields
    for code, name, account_type, tax_type, system, description in region.chart:
        fields = {"Code": code, "Name": name, "Type": account_type, "TaxType": tax_type,
                  "Status": "ARCHIVED" if code in region.archived else "ACTIVE",
                  "ShowInExpenseClaims": account_type in ("OVERHEADS", "EXPENSE"),
                  "AddToWatchlist": code in ("200", "400", "610", "800")}
        if description:
            fields["Description"] = description
        if system:
            fields["SystemAccount"] = system
        yield code, fields


def _reporting(region: Region, fields: dict[str, Any]) -> None:
    if not region.reporting_codes:
        return
    system = fields.get("SystemAccount")
    code, name = charts.REPORTING_BY_SYSTEM.get(system or "") or charts.REPORTING_BY_TYPE[fields["Type"]]
    fields["ReportingCode"], fields["ReportingCodeName"] = code, name


def build_org(tenant_id: str, name: str, country: str, *, accounts: int | None = None) -> Org:
    """An organisation with the region's chart; `accounts` pads (or cuts) it to that many accounts."""
    try:
        region = REGIONS[country]
    except KeyError:
        raise ValueError(f"country must be one of {', '.join(REGIONS)}") from None
    created = _EPOCH - timedelta(days=900)
    org = Org(tenant_id, name, country, region.currency, region.reporting_codes,
              _organisation(tenant_id, name, region, created))
    for row in region.tax_rates:
        org.add_tax_rate(taxrates.tax_fields(row))
    rows = list(_account_fields(region))
    if accounts is not None:
        rows = rows[:accounts] + list(_padding(region, accounts - len(rows)))
    for index, (key, fields) in enumerate(rows):
        _reporting(region, fields)
        # Spread the timestamps so If-Modified-Since has something to cut.
        fields["UpdatedDateUTC"] = _EPOCH + timedelta(hours=index * 7, milliseconds=index * 131)
        org.add_account(fields, now=fields["UpdatedDateUTC"], account_id=stable_id(tenant_id, "account", key))
    for theme_name, order, logo in THEMES:
        theme: dict[str, Any] = {"Name": theme_name, "SortOrder": order}
        if logo:
            theme["LogoUrl"] = logo
        org.add_theme(theme, now=created + timedelta(days=order * 40, seconds=order * 17),
                      theme_id=stable_id(tenant_id, "theme", theme_name))
    for category, options in TRACKING:
        category_id = org.tracking.add_category({"Name": category},
                                                category_id=stable_id(tenant_id, "tracking", category))
        for option, status in options:
            org.tracking.add_option(category_id, {"Name": option, "Status": status},
                                    option_id=stable_id(tenant_id, "tracking", category, option))
    return org


# Two categories, the most Xero allows active at once; one option archived (it stays on old invoices).
TRACKING: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("Region", (("North", "ACTIVE"), ("South", "ACTIVE"), ("Central", "ARCHIVED"))),
    ("Department", (("Sales", "ACTIVE"), ("Operations", "ACTIVE"))),
)


_PADDING_KINDS = [
    ("OVERHEADS", "Project expenses", "in"), ("REVENUE", "Service revenue", "out"),
    ("DIRECTCOSTS", "Job materials", "in"), ("EXPENSE", "Department costs", "in"),
    ("SALES", "Product line sales", "out"), ("CURRENT", "Intercompany receivable", "none"),
    ("CURRLIAB", "Accrued costs", "none"), ("FIXED", "Plant and equipment", "none"),
]
_PADDING_TAX = {"NZ": {"in": "INPUT2", "out": "OUTPUT2", "none": "NONE"},
                "AU": {"in": "INPUT", "out": "OUTPUT", "none": "BASEXCLUDED"},
                "UK": {"in": "INPUT2", "out": "OUTPUT2", "none": "NONE"}}


def _padding(region: Region, count: int) -> Iterable[tuple[str, dict[str, Any]]]:
    """Plausible extra accounts for benchmark-sized charts; every 50th is archived."""
    for n in range(1, count + 1):
        account_type, label, tax = _PADDING_KINDS[n % len(_PADDING_KINDS)]
        code = f"X{n:05d}"
        fields = {"Code": code, "Name": f"{label} {n:05d}", "Type": account_type,
                  "TaxType": _PADDING_TAX[region.country][tax],
                  "Status": "ARCHIVED" if n % 50 == 0 else "ACTIVE",
                  "Description": f"{label} tracked separately (ledger {n})"}
        yield code, fields


def seed_orgs() -> dict[str, Org]:
    return {
        NZ_TENANT_ID: build_org(NZ_TENANT_ID, NZ_ORG_NAME, "NZ"),
        AU_TENANT_ID: build_org(AU_TENANT_ID, AU_ORG_NAME, "AU"),
        UK_TENANT_ID: build_org(UK_TENANT_ID, UK_ORG_NAME, "UK"),
    }
