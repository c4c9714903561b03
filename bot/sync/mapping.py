"""Pure mapping from Xero's records to rows of our Dataverse tables (bot.sync.tables). No I/O.

Every row carries the connector lookup (`xdc_connectorid@odata.bind`) and Xero's key, which together
are the table's alternate key, so each write is an idempotent upsert. Text is cut to the column's
maximum length, dates go out as UTC ISO-8601 with `Z`, decimals as JSON numbers (Dataverse decimals
take up to 10 places; Xero sends 4).

`xdc_recordstate` says whether Xero still returns the record: anything Xero returns is ACTIVE, whatever
its own status (ARCHIVED and DELETED accounts are written with that status in `xdc_status`); a record
that disappeared from Xero is marked INACTIVE (`inactive_row`), never deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.sync.dataverse_batch import key_segment
from bot.sync.tables import (
    BRANDING_THEME,
    CHART_OF_ACCOUNTS,
    CONNECTOR,
    TAX_TYPE,
    TRACKING_CATEGORY,
    TRACKING_OPTION,
    ColumnType,
    RecordState,
    Table,
)
from bot.sync.xero_models import Account, BrandingTheme, TaxComponent, TaxRate, TrackingCategory

Row = dict[str, Any]
Key = dict[str, str]


class Entity(StrEnum):
    """The synced entities, as named in run reports and fingerprints."""

    ACCOUNTS = "accounts"
    TAX_RATES = "tax_rates"
    BRANDING_THEMES = "branding_themes"
    TRACKING_CATEGORIES = "tracking_categories"
    TRACKING_OPTIONS = "tracking_options"


TABLE_OF: dict[Entity, Table] = {
    Entity.ACCOUNTS: CHART_OF_ACCOUNTS,
    Entity.TAX_RATES: TAX_TYPE,
    Entity.BRANDING_THEMES: BRANDING_THEME,
    Entity.TRACKING_CATEGORIES: TRACKING_CATEGORY,
    Entity.TRACKING_OPTIONS: TRACKING_OPTION,
}

# Xero's key column in each of our tables (the other half of the alternate key).
_KEY_COLUMN: dict[str, str] = {
    CHART_OF_ACCOUNTS.logical_name: "xdc_xeroaccountid",
    TAX_TYPE.logical_name: "xdc_xerotaxtype",
    BRANDING_THEME.logical_name: "xdc_xerobrandingthemeid",
    TRACKING_CATEGORY.logical_name: "xdc_xerotrackingcategoryid",
    TRACKING_OPTION.logical_name: "xdc_xerotrackingoptionid",
}


def key_column(table: Table) -> str:
    """The column of `table` holding Xero's key."""
    return _KEY_COLUMN[table.logical_name]


def connector_bind(connector_row_id: str) -> str:
    """The value of `xdc_connectorid@odata.bind`: a reference to the Connector row."""
    return f"/{CONNECTOR.entity_set}({connector_row_id})"


def row_key(table: Table, connector_row_id: str, xero_key: str) -> Key:
    """The alternate key of a synced row: the connector lookup and Xero's key, in the table's order."""
    values = {table.connector_lookup: connector_row_id, key_column(table): xero_key}
    return {name: values[name] for name in table.alternate_key}


def dv_datetime(value: datetime | None) -> str | None:
    """A UTC instant as Dataverse's Edm.DateTimeOffset takes it (second precision, `Z`)."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def dv_decimal(value: Decimal | None) -> float | None:
    """A decimal as a JSON number; Xero gives 4 places and so do we."""
    if value is None:
        return None
    return float(value.quantize(Decimal("0.0001")))


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _finish(table: Table, connector_row_id: str, values: Row) -> Row:
    """Cut text to the columns' lengths and add the connector bind and the record state."""
    row: Row = {table.lookup_bind(table.connector_lookup): connector_bind(connector_row_id)}
    for name, value in values.items():
        column = table.column(name)
        if isinstance(value, str) and column.max_length is not None and len(value) > column.max_length:
            value = value[: column.max_length]
        if column.type is ColumnType.CHOICE and value is not None:
            value = int(value)
        row[name] = value
    return row


def account_row(account: Account, connector_row_id: str) -> Row:
    return _finish(
        CHART_OF_ACCOUNTS,
        connector_row_id,
        {
            "xdc_xeroaccountid": account.account_id,
            "xdc_code": _text(account.code),
            # Required in Dynamics; bank accounts may come without a code, never without an id.
            "xdc_name": _text(account.name) or account.code or account.account_id,
            "xdc_type": _text(account.type),
            "xdc_class": _text(account.account_class),
            "xdc_status": _text(account.status),
            "xdc_taxtype": _text(account.tax_type),
            "xdc_description": _text(account.description),
            "xdc_reportingcode": _text(account.reporting_code),
            "xdc_reportingcodename": _text(account.reporting_code_name),
            "xdc_systemaccount": _text(account.system_account),
            "xdc_bankaccountnumber": _text(account.bank_account_number),
            "xdc_bankaccounttype": _text(account.bank_account_type),
            "xdc_currencycode": _text(account.currency_code),
            "xdc_enablepaymentstoaccount": account.enable_payments_to_account,
            "xdc_showinexpenseclaims": account.show_in_expense_claims,
            "xdc_xeroupdatedutc": dv_datetime(account.updated_date_utc),
            "xdc_recordstate": RecordState.ACTIVE,
        },
    )


def _rate(value: Decimal | None) -> str:
    return "?" if value is None else f"{value.quantize(Decimal('0.0001'))}%"


def component_text(component: TaxComponent) -> str:
    """`GST 15.0000% (compound, non-recoverable)`: one component as a person reads it."""
    flags = [
        label
        for label, on in (
            ("compound", component.is_compound),
            ("non-recoverable", component.is_non_recoverable),
        )
        if on
    ]
    text = f"{component.name or 'Component'} {_rate(component.rate)}"
    return f"{text} ({', '.join(flags)})" if flags else text


def components_text(components: Sequence[TaxComponent]) -> str | None:
    """Every component on one line each, in Xero's order."""
    if not components:
        return None
    return "\n".join(component_text(c) for c in components)


def tax_rate_row(tax_rate: TaxRate, connector_row_id: str) -> Row:
    return _finish(
        TAX_TYPE,
        connector_row_id,
        {
            "xdc_xerotaxtype": tax_rate.tax_type,
            "xdc_name": _text(tax_rate.name) or tax_rate.tax_type,
            "xdc_status": _text(tax_rate.status),
            "xdc_reporttaxtype": _text(tax_rate.report_tax_type),
            "xdc_effectiverate": dv_decimal(tax_rate.effective_rate),
            "xdc_displayrate": dv_decimal(tax_rate.display_tax_rate),
            "xdc_components": components_text(tax_rate.tax_components),
            "xdc_canapplytoassets": tax_rate.can_apply_to_assets,
            "xdc_canapplytoequity": tax_rate.can_apply_to_equity,
            "xdc_canapplytoexpenses": tax_rate.can_apply_to_expenses,
            "xdc_canapplytoliabilities": tax_rate.can_apply_to_liabilities,
            "xdc_canapplytorevenue": tax_rate.can_apply_to_revenue,
            "xdc_recordstate": RecordState.ACTIVE,
        },
    )


def branding_theme_row(theme: BrandingTheme, connector_row_id: str) -> Row:
    return _finish(
        BRANDING_THEME,
        connector_row_id,
        {
            "xdc_xerobrandingthemeid": theme.branding_theme_id,
            "xdc_name": _text(theme.name) or theme.branding_theme_id,
            "xdc_sortorder": theme.sort_order,
            "xdc_type": _text(theme.type),
            "xdc_logourl": _text(theme.logo_url),
            "xdc_xerocreatedutc": dv_datetime(theme.created_date_utc),
            "xdc_recordstate": RecordState.ACTIVE,
        },
    )


def tracking_category_row(category: TrackingCategory, connector_row_id: str) -> Row:
    return _finish(
        TRACKING_CATEGORY,
        connector_row_id,
        {
            "xdc_xerotrackingcategoryid": category.tracking_category_id,
            "xdc_name": _text(category.name) or category.tracking_category_id,
            "xdc_status": _text(category.status),
            "xdc_recordstate": RecordState.ACTIVE,
        },
    )


def category_bind(connector_row_id: str, category_id: str) -> str:
    """A reference to the category's row by its alternate key, so an option can be bound to it without
    knowing the row's GUID (DP:use-alternate-key-reference-record: `@odata.bind` takes any record URL).
    The category's row must exist when the option is written: categories are written first."""
    key = row_key(TRACKING_CATEGORY, connector_row_id, category_id)
    return f"/{TRACKING_CATEGORY.entity_set}{key_segment(TRACKING_CATEGORY, key)}"


def tracking_option_rows(category: TrackingCategory, connector_row_id: str) -> dict[str, Row]:
    """The category's options by TrackingOptionID. The category lookup is not part of the alternate key,
    so it stays in the body of every upsert (`xdc_TrackingCategoryId@odata.bind`)."""
    bind = {
        TRACKING_OPTION.lookup_bind("xdc_trackingcategoryid"): category_bind(
            connector_row_id, category.tracking_category_id
        )
    }
    rows: dict[str, Row] = {}
    for option in category.options:
        row = _finish(
            TRACKING_OPTION,
            connector_row_id,
            {
                "xdc_xerotrackingoptionid": option.tracking_option_id,
                "xdc_name": _text(option.name) or option.tracking_option_id,
                "xdc_status": _text(option.status),
                "xdc_recordstate": RecordState.ACTIVE,
            },
        )
        rows[option.tracking_option_id] = {**row, **bind}
    return rows


def map_tracking(
    categories: Sequence[TrackingCategory], connector_row_id: str
) -> tuple[dict[str, Row], dict[str, Row]]:
    """(category rows by TrackingCategoryID, option rows by TrackingOptionID)."""
    category_rows = {c.tracking_category_id: tracking_category_row(c, connector_row_id) for c in categories}
    option_rows: dict[str, Row] = {}
    for category in categories:
        option_rows.update(tracking_option_rows(category, connector_row_id))
    return category_rows, option_rows


def inactive_row(table: Table, connector_row_id: str, xero_key: str) -> Row:
    """What is written for a record Xero no longer returns: only its key and state change."""
    return _finish(
        table,
        connector_row_id,
        {key_column(table): xero_key, table.state_column: RecordState.INACTIVE},
    )


def map_accounts(accounts: Sequence[Account], connector_row_id: str) -> dict[str, Row]:
    """Rows by Xero key (AccountID)."""
    return {a.account_id: account_row(a, connector_row_id) for a in accounts}


def map_tax_rates(tax_rates: Sequence[TaxRate], connector_row_id: str) -> dict[str, Row]:
    """Rows by Xero key (TaxType)."""
    return {t.tax_type: tax_rate_row(t, connector_row_id) for t in tax_rates}


def map_branding_themes(themes: Sequence[BrandingTheme], connector_row_id: str) -> dict[str, Row]:
    """Rows by Xero key (BrandingThemeID)."""
    return {t.branding_theme_id: branding_theme_row(t, connector_row_id) for t in themes}


def row_values(row: Row) -> list[str]:
    """The text and numbers in a row (not its key or bind), for scrubbing them out of error messages."""
    values: list[str] = []
    for name, value in row.items():
        if name.endswith("@odata.bind") or isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str | int | float):
            values.append(str(value))
    return values
