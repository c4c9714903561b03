"""The three settings resources and the organisation as records keyed by their wire names.

A record is a dict in Xero's field order holding typed values (str, bool, Decimal, datetime); `wire.dumps`
turns it into Xero's text. The builders validate like Xero's API does (unique Name and Code, known
Type and TaxType) and raise `XeroValidationError` with Xero's messages.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

Record = dict[str, Any]


class Kind(StrEnum):
    STRING = "String"
    BOOLEAN = "Boolean"
    DECIMAL = "Decimal"
    INT = "Int32"
    DATETIME = "DateTime"
    GUID = "Guid"
    LIST = "List"


class XeroValidationError(ValueError):
    """A value Xero would refuse with a ValidationException."""


# Field order is the order Xero writes them in.
ACCOUNT_FIELDS: dict[str, Kind] = {
    "AccountID": Kind.GUID, "Code": Kind.STRING, "Name": Kind.STRING, "Status": Kind.STRING,
    "Type": Kind.STRING, "TaxType": Kind.STRING, "Description": Kind.STRING, "Class": Kind.STRING,
    "SystemAccount": Kind.STRING, "EnablePaymentsToAccount": Kind.BOOLEAN,
    "ShowInExpenseClaims": Kind.BOOLEAN, "BankAccountNumber": Kind.STRING,
    "BankAccountType": Kind.STRING, "CurrencyCode": Kind.STRING, "ReportingCode": Kind.STRING,
    "ReportingCodeName": Kind.STRING, "HasAttachments": Kind.BOOLEAN,
    "UpdatedDateUTC": Kind.DATETIME, "AddToWatchlist": Kind.BOOLEAN,
}
TAX_RATE_FIELDS: dict[str, Kind] = {
    "Name": Kind.STRING, "TaxType": Kind.STRING, "ReportTaxType": Kind.STRING,
    "CanApplyToAssets": Kind.BOOLEAN, "CanApplyToEquity": Kind.BOOLEAN,
    "CanApplyToExpenses": Kind.BOOLEAN, "CanApplyToLiabilities": Kind.BOOLEAN,
    "CanApplyToRevenue": Kind.BOOLEAN, "DisplayTaxRate": Kind.DECIMAL, "EffectiveRate": Kind.DECIMAL,
    "Status": Kind.STRING, "TaxComponents": Kind.LIST,
}
THEME_FIELDS: dict[str, Kind] = {
    "BrandingThemeID": Kind.GUID, "Name": Kind.STRING, "LogoUrl": Kind.STRING, "Type": Kind.STRING,
    "SortOrder": Kind.INT, "CreatedDateUTC": Kind.DATETIME,
}

ACCOUNT_TYPES = ("BANK", "CURRENT", "CURRLIAB", "DEPRECIATN", "DIRECTCOSTS", "EQUITY", "EXPENSE", "FIXED",
                 "INVENTORY", "LIABILITY", "NONCURRENT", "OTHERINCOME", "OVERHEADS", "PREPAYMENT",
                 "REVENUE", "SALES", "TERMLIAB", "PAYG")
CLASS_BY_TYPE = {
    **dict.fromkeys(("BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"), "ASSET"),
    **dict.fromkeys(("CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG"), "LIABILITY"),
    "EQUITY": "EQUITY",
    **dict.fromkeys(("DEPRECIATN", "DIRECTCOSTS", "EXPENSE", "OVERHEADS"), "EXPENSE"),
    **dict.fromkeys(("OTHERINCOME", "REVENUE", "SALES"), "REVENUE"),
}
# The top-level reporting codes of AU and NZ organisations (UK organisations have none).
REPORTING_BY_CLASS = {"ASSET": ("ASS", "Assets"), "LIABILITY": ("LIA", "Liabilities"),
                      "EQUITY": ("EQU", "Equity"), "EXPENSE": ("EXP", "Expenses"),
                      "REVENUE": ("REV", "Revenue")}
SYSTEM_ACCOUNTS = ("DEBTORS", "CREDITORS", "BANKCURRENCYGAIN", "GST", "GSTONIMPORTS", "HISTORICAL",
                   "REALISEDCURRENCYGAIN", "RETAINEDEARNINGS", "ROUNDING", "TRACKINGTRANSFERS",
                   "UNPAIDEXPCLM", "UNREALISEDCURRENCYGAIN", "WAGEPAYABLES", "CISASSETS", "CISASSET",
                   "CISLABOUR", "CISLABOUREXPENSE", "CISLABOURINCOME", "CISLIABILITY", "CISMATERIALS")
BANK_ACCOUNT_TYPES = ("BANK", "CREDITCARD", "PAYPAL", "NONE", "")
_CODE = re.compile(r"^[A-Za-z0-9]{1,10}$")
_OUTPUT_REPORT_TYPES = {"OUTPUT", "ECOUTPUT", "ECOUTPUTSERVICES", "MOSSSALES", "CAPITALSALESOUTPUT",
                        "SALESOUTPUT", "EXEMPTOUTPUT", "EXEMPTEXPORT", "ZERORATEDOUTPUT"}
_INPUT_REPORT_TYPES = {"INPUT", "CAPEXINPUT", "ECACQUISITIONS", "ECINPUT", "EXEMPTEXPENSES",
                       "EXEMPTCAPITAL", "EXEMPTINPUT", "INPUTTAXED", "PURCHASESINPUT", "REVERSECHARGES",
                       "CAPITALEXPENSESINPUT", "ZERORATEDINPUT", "GSTONCAPIMPORTS"}


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@functools.cache
def _aliases(known: tuple[str, ...]) -> dict[str, str]:
    by_alias: dict[str, str] = {}
    for name in known:
        by_alias[name.lower()] = name
        by_alias[_snake(name)] = name
    return by_alias


def normalise(fields: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Accept Xero's names (`TaxType`) or snake_case (`tax_type`); refuse anything else."""
    by_alias = _aliases(tuple(known))
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = by_alias.get(key) or by_alias.get(key.lower())
        if name is None:
            raise TypeError(f"unknown field {key!r}")
        out[name] = value
    return out


Taken = Callable[[str, str], bool]


def taken_among(others: Iterable[Record]) -> Taken:
    """A uniqueness check over a few records (tax rates, themes)."""
    others = list(others)
    return lambda field, value: any((o.get(field) or "").casefold() == value.casefold() for o in others)


def _unique(value: str, taken: Taken, field: str) -> None:
    if taken(field, value):
        raise XeroValidationError(f"Please enter a unique {field}.")


def build_account(
    fields: Mapping[str, Any], *, account_id: str, now: datetime, taken: Taken,
    tax_types: Mapping[str, Record], base_currency: str, reporting_codes: bool,
) -> Record:
    """A validated account record; `taken(field, value)` says if another account uses a Name or Code."""
    f = normalise(fields, ACCOUNT_FIELDS)
    account_type = str(f.get("Type") or "")
    if account_type not in ACCOUNT_TYPES:
        raise XeroValidationError(f"Account Type '{account_type}' is not valid.")
    name = str(f.get("Name") or "").strip()
    if not name:
        raise XeroValidationError("Please enter a Name.")
    if len(name) > 150:
        raise XeroValidationError("Name must be 150 characters or fewer.")
    _unique(name, taken, "Name")
    code = f.get("Code")
    code = str(code).strip() if code not in (None, "") else None
    if code is None and account_type != "BANK":
        raise XeroValidationError("Please enter a Code.")
    if code is not None:
        if not _CODE.match(code):
            raise XeroValidationError("Account code must be alphanumeric and 10 characters or fewer.")
        _unique(code, taken, "Code")
    status = str(f.get("Status") or "ACTIVE")
    if status not in ("ACTIVE", "ARCHIVED"):
        raise XeroValidationError(f"Account Status '{status}' is not valid.")
    default_tax = "NONE" if "NONE" in tax_types else "BASEXCLUDED"
    tax_type = str(f.get("TaxType") or default_tax)
    if tax_type not in tax_types:
        raise XeroValidationError(f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of account.")
    system = f.get("SystemAccount") or None
    if system is not None and system not in SYSTEM_ACCOUNTS:
        raise XeroValidationError(f"SystemAccount '{system}' is not valid.")
    description = f.get("Description") or None
    if description is not None and len(description) > 4000:
        raise XeroValidationError("Description must be 4000 characters or fewer.")
    account_class = CLASS_BY_TYPE[account_type]
    record: Record = {"AccountID": account_id}
    if code is not None:
        record["Code"] = code
    record.update({"Name": name, "Status": status, "Type": account_type, "TaxType": tax_type})
    if description is not None and account_type != "BANK":
        record["Description"] = description
    record["Class"] = account_class
    if system is not None:
        record["SystemAccount"] = system
    record["EnablePaymentsToAccount"] = bool(f.get("EnablePaymentsToAccount", False))
    record["ShowInExpenseClaims"] = bool(f.get("ShowInExpenseClaims", False))
    if account_type == "BANK":
        bank_type = str(f.get("BankAccountType") or "BANK")
        if bank_type not in BANK_ACCOUNT_TYPES:
            raise XeroValidationError(f"BankAccountType '{bank_type}' is not valid.")
        if f.get("BankAccountNumber"):
            record["BankAccountNumber"] = str(f["BankAccountNumber"])
        record["BankAccountType"] = bank_type
        record["CurrencyCode"] = str(f.get("CurrencyCode") or base_currency)
    reporting = f.get("ReportingCode")
    if reporting:
        record["ReportingCode"] = str(reporting)
        record["ReportingCodeName"] = str(f.get("ReportingCodeName") or reporting)
    elif reporting_codes:
        record["ReportingCode"], record["ReportingCodeName"] = REPORTING_BY_CLASS[account_class]
    record["HasAttachments"] = bool(f.get("HasAttachments", False))
    record["UpdatedDateUTC"] = f.get("UpdatedDateUTC") or now
    record["AddToWatchlist"] = bool(f.get("AddToWatchlist", False))
    return record


def _rate(value: Any) -> Decimal:
    rate = Decimal(str(value))
    if rate < 0 or rate > 100:
        raise XeroValidationError("Tax component rates must be between 0 and 100.")
    return rate.quantize(Decimal("0.0001"))


def effective_rate(components: list[Record]) -> Decimal:
    """Compound components are charged on the amount plus the simple components' tax."""
    simple = sum((c["Rate"] for c in components if not c["IsCompound"]), Decimal(0))
    compound = sum((c["Rate"] for c in components if c["IsCompound"]), Decimal(0))
    return (simple + compound * (1 + simple / 100)).quantize(Decimal("0.0001"))


def build_tax_rate(fields: Mapping[str, Any], *, tax_type: str, others: Iterable[Record]) -> Record:
    f = normalise(fields, TAX_RATE_FIELDS)
    name = str(f.get("Name") or "").strip()
    if not name:
        raise XeroValidationError("Please enter a Name.")
    _unique(name, taken_among(others), "Name")
    raw_components = f.get("TaxComponents") or [{"Name": "Tax", "Rate": 0}]
    components: list[Record] = []
    for raw in raw_components:
        c = normalise(raw, ("Name", "Rate", "IsCompound", "IsNonRecoverable"))
        components.append({"Name": str(c.get("Name") or "Tax"), "Rate": _rate(c.get("Rate", 0)),
                           "IsCompound": bool(c.get("IsCompound", False)),
                           "IsNonRecoverable": bool(c.get("IsNonRecoverable", False))})
    report = str(f.get("ReportTaxType") or "OUTPUT")
    status = str(f.get("Status") or "ACTIVE")
    if status not in ("ACTIVE", "DELETED", "ARCHIVED", "PENDING"):
        raise XeroValidationError(f"Status '{status}' is not valid.")
    output, input_ = report in _OUTPUT_REPORT_TYPES, report in _INPUT_REPORT_TYPES
    defaults = {"CanApplyToAssets": True, "CanApplyToEquity": True, "CanApplyToExpenses": not output,
                "CanApplyToLiabilities": True, "CanApplyToRevenue": not input_}
    record: Record = {"Name": name, "TaxType": tax_type, "ReportTaxType": report}
    for key, default in defaults.items():
        record[key] = bool(f.get(key, default))
    record["DisplayTaxRate"] = sum((c["Rate"] for c in components), Decimal(0)).quantize(Decimal("0.0001"))
    record["EffectiveRate"] = effective_rate(components)
    record["Status"] = status
    record["TaxComponents"] = components
    return record


def build_theme(fields: Mapping[str, Any], *, theme_id: str, now: datetime, others: Iterable[Record]) -> Record:
    f = normalise(fields, THEME_FIELDS)
    others = list(others)
    name = str(f.get("Name") or "").strip()
    if not name:
        raise XeroValidationError("Please enter a Name.")
    _unique(name, taken_among(others), "Name")
    sort_order = f.get("SortOrder")
    if sort_order is None:
        sort_order = max((o["SortOrder"] for o in others), default=-1) + 1
    record: Record = {"BrandingThemeID": theme_id, "Name": name}
    if f.get("LogoUrl"):
        record["LogoUrl"] = str(f["LogoUrl"])
    record.update({"Type": "INVOICE", "SortOrder": int(sort_order),
                   "CreatedDateUTC": f.get("CreatedDateUTC") or now})
    return record
