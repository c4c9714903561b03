"""One Xero organisation's settings: its Organisation record, chart of accounts, tax rates, themes,
tracking categories (`tracking.py`).

Every change goes through the validating builders in `resources`, so the control API cannot create
data the real API could not return. Deleted accounts disappear from every read, as in Xero.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.xero.resources import (
    ACCOUNT_FIELDS,
    Record,
    XeroValidationError,
    build_account,
    build_tax_rate,
    build_theme,
    normalise,
)
from sandbox.xero.tracking import Tracking

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://sandbox.invalid/xero")


def stable_id(*parts: str) -> str:
    """Deterministic ids, so tests and fixtures can name seeded objects."""
    return str(uuid.uuid5(NAMESPACE, ":".join(parts)))


class UnknownObject(KeyError):
    """No such tenant, account, tax rate or theme."""


@dataclass
class Org:
    tenant_id: str
    name: str
    country: str
    base_currency: str
    reporting_codes: bool
    organisation: Record
    accounts: dict[str, Record] = field(default_factory=dict)
    tax_rates: dict[str, Record] = field(default_factory=dict)
    themes: dict[str, Record] = field(default_factory=dict)
    _serial: int = 0
    # casefolded Name / Code -> AccountID, so uniqueness checks stay cheap on 5,000-account charts
    _names: dict[str, str] = field(default_factory=dict)
    _codes: dict[str, str] = field(default_factory=dict)
    tracking: Tracking = field(init=False)

    def __post_init__(self) -> None:
        self.tracking = Tracking(self._next_id)

    def _next_id(self, kind: str) -> str:
        self._serial += 1
        return stable_id(self.tenant_id, kind, "added", str(self._serial))

    # Accounts

    def _taken_by_other(self, account_id: str) -> Callable[[str, str], bool]:
        def taken(field_name: str, value: str) -> bool:
            index = self._names if field_name == "Name" else self._codes
            return index.get(value.casefold(), account_id) != account_id
        return taken

    def _store_account(self, record: Record) -> None:
        account_id = record["AccountID"]
        self._forget_account(account_id)
        self.accounts[account_id] = record
        self._names[record["Name"].casefold()] = account_id
        if record.get("Code"):
            self._codes[record["Code"].casefold()] = account_id

    def _forget_account(self, account_id: str) -> None:
        old = self.accounts.get(account_id)
        if old is not None:
            self._names.pop(old["Name"].casefold(), None)
            if old.get("Code"):
                self._codes.pop(old["Code"].casefold(), None)

    def add_account(self, fields: Mapping[str, Any], *, now: datetime, account_id: str | None = None) -> str:
        account_id = account_id or self._next_id("account")
        if account_id in self.accounts:
            raise XeroValidationError(f"AccountID {account_id} already exists.")
        record = build_account(
            fields, account_id=account_id, now=now, taken=self._taken_by_other(account_id),
            tax_types=self.tax_rates, base_currency=self.base_currency, reporting_codes=self.reporting_codes,
        )
        self._store_account(record)
        return account_id

    def account(self, account_id: str) -> Record:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise UnknownObject(f"no account {account_id} in {self.name}") from None

    def update_account(self, account_id: str, fields: Mapping[str, Any], *, now: datetime,
                       touch: bool = True) -> None:
        """Change fields; `touch=False` keeps UpdatedDateUTC, as some changes in Xero do."""
        old = self.account(account_id)
        merged = {k: v for k, v in old.items() if k not in ("AccountID", "Class", "UpdatedDateUTC")}
        changes = normalise(fields, ACCOUNT_FIELDS)
        if changes.get("Type", old["Type"]) != old["Type"] and "ReportingCode" not in changes:
            # A new Type takes that Type's reporting code unless one is given.
            merged.pop("ReportingCode", None)
            merged.pop("ReportingCodeName", None)
        if "ReportingCode" in changes and "ReportingCodeName" not in changes:
            merged.pop("ReportingCodeName", None)
        merged.update(changes)
        merged["UpdatedDateUTC"] = now if touch else old["UpdatedDateUTC"]
        self._store_account(build_account(
            merged, account_id=account_id, now=now, taken=self._taken_by_other(account_id),
            tax_types=self.tax_rates, base_currency=self.base_currency, reporting_codes=self.reporting_codes,
        ))

    def delete_account(self, account_id: str) -> None:
        self.account(account_id)
        self._forget_account(account_id)
        del self.accounts[account_id]

    # Tax rates

    def add_tax_rate(self, fields: Mapping[str, Any]) -> str:
        tax_type = fields.get("TaxType") or fields.get("tax_type")
        if not tax_type:
            numbers = [int(t[3:]) for t in self.tax_rates if t.startswith("TAX") and t[3:].isdigit()]
            tax_type = f"TAX{max(numbers, default=0) + 1:03d}"
        tax_type = str(tax_type)
        if tax_type in self.tax_rates:
            raise XeroValidationError(f"TaxType {tax_type} already exists.")
        self.tax_rates[tax_type] = build_tax_rate(fields, tax_type=tax_type, others=self.tax_rates.values())
        return tax_type

    def tax_rate(self, tax_type: str) -> Record:
        try:
            return self.tax_rates[tax_type]
        except KeyError:
            raise UnknownObject(f"no tax rate {tax_type} in {self.name}") from None

    def update_tax_rate(self, tax_type: str, fields: Mapping[str, Any]) -> None:
        old = self.tax_rate(tax_type)
        merged: dict[str, Any] = {k: v for k, v in old.items()
                                  if k not in ("TaxType", "DisplayTaxRate", "EffectiveRate")}
        merged.update(fields)
        others = [r for r in self.tax_rates.values() if r["TaxType"] != tax_type]
        self.tax_rates[tax_type] = build_tax_rate(merged, tax_type=tax_type, others=others)

    # Branding themes

    def add_theme(self, fields: Mapping[str, Any], *, now: datetime, theme_id: str | None = None) -> str:
        theme_id = theme_id or self._next_id("theme")
        self.themes[theme_id] = build_theme(fields, theme_id=theme_id, now=now, others=self.themes.values())
        return theme_id

    def theme(self, theme_id: str) -> Record:
        try:
            return self.themes[theme_id]
        except KeyError:
            raise UnknownObject(f"no branding theme {theme_id} in {self.name}") from None

    def update_theme(self, theme_id: str, fields: Mapping[str, Any]) -> None:
        old = self.theme(theme_id)
        merged = {k: v for k, v in old.items() if k not in ("BrandingThemeID", "Type")}
        merged.update(fields)
        others = [t for t in self.themes.values() if t["BrandingThemeID"] != theme_id]
        self.themes[theme_id] = build_theme(merged, theme_id=theme_id, now=old["CreatedDateUTC"], others=others)

    def delete_theme(self, theme_id: str) -> None:
        self.theme(theme_id)
        del self.themes[theme_id]
