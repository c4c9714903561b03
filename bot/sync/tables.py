"""Our tables in Dynamics 365 (Dataverse), defined once.

Used by the mapping (column names), the Dataverse client (entity sets, alternate keys, privileges) and
the Dataverse sandbox (which serves exactly these tables). Publisher prefix `xdc`.

Every synced table has a lookup to its connector and an alternate key made of that lookup and Xero's
own key, so every write is an idempotent upsert and one environment can hold several organisations.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

PREFIX = "xdc"
SOLUTION_UNIQUE_NAME = "XeroDynamicsConnector"
SOLUTION_FRIENDLY_NAME = "Xero Dynamics Connector"
SECURITY_ROLE_NAME = "Xero Connector User"


class ColumnType(StrEnum):
    STRING = "string"  # Edm.String
    MEMO = "memo"  # Edm.String, long
    INT = "int"  # Edm.Int32
    DECIMAL = "decimal"  # Edm.Decimal
    BOOL = "bool"  # Edm.Boolean
    DATETIME = "datetime"  # Edm.DateTimeOffset (UTC)
    CHOICE = "choice"  # Edm.Int32 option set
    LOOKUP = "lookup"  # Edm.Guid, written as `name@odata.bind`, read as `_name_value`
    GUID = "guid"  # Edm.Guid (primary key)


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    label: str
    max_length: int | None = None
    required: bool = False
    choices: builtins.type[IntEnum] | None = None
    target: str | None = None  # lookup target logical name


@dataclass(frozen=True)
class Table:
    logical_name: str
    entity_set: str
    display_name: str
    primary_key: str
    primary_name: str
    columns: tuple[Column, ...]
    alternate_key: tuple[str, ...] = ()
    alternate_key_name: str = ""
    # The Xero field that is the natural key (AccountID, TaxType, BrandingThemeID).
    xero_key: str = ""
    connector_lookup: str = ""
    state_column: str = ""

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.logical_name} has no column {name}")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def lookup_bind(self, column: str) -> str:
        """The navigation property used to set a lookup (`xdc_connectorid@odata.bind`)."""
        return f"{column}@odata.bind"


class ConnectorStatus(IntEnum):
    ACTIVE = 100000000
    PAUSED = 100000001
    NEEDS_RECONNECTION = 100000002
    DISCONNECTED = 100000003


class RunOutcomeChoice(IntEnum):
    NONE = 100000000
    SUCCEEDED = 100000001
    PARTIAL = 100000002
    FAILED = 100000003


class RecordState(IntEnum):
    """Whether the row is still present in Xero: removed rows are deactivated, never deleted."""

    ACTIVE = 100000000
    INACTIVE = 100000001


def _s(name: str, label: str, max_length: int, required: bool = False) -> Column:
    return Column(name, ColumnType.STRING, label, max_length=max_length, required=required)


def _lookup_connector() -> Column:
    return Column("xdc_connectorid", ColumnType.LOOKUP, "Connector", required=True, target="xdc_connector")


CONNECTOR = Table(
    logical_name="xdc_connector",
    entity_set="xdc_connectors",
    display_name="Xero Connector",
    primary_key="xdc_connectorid",
    primary_name="xdc_name",
    columns=(
        Column("xdc_connectorid", ColumnType.GUID, "Connector"),
        _s("xdc_name", "Connection name", 100, required=True),
        _s("xdc_connectionid", "Connection id", 64, required=True),
        _s("xdc_xeroorganisationname", "Xero organisation", 255),
        _s("xdc_xerotenantid", "Xero tenant id", 64, required=True),
        _s("xdc_plan", "Subscription plan", 50),
        _s("xdc_timezone", "Timezone", 64),
        Column("xdc_status", ColumnType.CHOICE, "Status", choices=ConnectorStatus),
        Column("xdc_lastrunutc", ColumnType.DATETIME, "Last run (UTC)"),
        Column("xdc_nextrunutc", ColumnType.DATETIME, "Next run (UTC)"),
        Column("xdc_lastoutcome", ColumnType.CHOICE, "Last outcome", choices=RunOutcomeChoice),
        _s("xdc_lastoutcomedetail", "Last outcome detail", 2000),
    ),
    alternate_key=("xdc_connectionid",),
    alternate_key_name="xdc_connector_connectionid",
)

CONNECTOR_SETTINGS = Table(
    logical_name="xdc_connectorsettings",
    entity_set="xdc_connectorsettingses",
    display_name="Xero Connector Settings",
    primary_key="xdc_connectorsettingsid",
    primary_name="xdc_name",
    columns=(
        Column("xdc_connectorsettingsid", ColumnType.GUID, "Connector settings"),
        _s("xdc_name", "Name", 100, required=True),
        _lookup_connector(),
        _s("xdc_plan", "Subscription plan", 50),
        _s("xdc_timezone", "Timezone", 64),
        _s("xdc_notifymode", "Notify about", 32),
        Column("xdc_isdefault", ColumnType.BOOL, "Is this the default connection"),
        Column("xdc_syncaccounts", ColumnType.BOOL, "Sync chart of accounts"),
        Column("xdc_synctaxrates", ColumnType.BOOL, "Sync tax types"),
        Column("xdc_syncbrandingthemes", ColumnType.BOOL, "Sync branding themes"),
    ),
    alternate_key=("xdc_connectorid",),
    alternate_key_name="xdc_connectorsettings_connector",
    connector_lookup="xdc_connectorid",
)

CHART_OF_ACCOUNTS = Table(
    logical_name="xdc_chartofaccounts",
    entity_set="xdc_chartofaccountses",
    display_name="Chart of Accounts",
    primary_key="xdc_chartofaccountsid",
    primary_name="xdc_name",
    columns=(
        Column("xdc_chartofaccountsid", ColumnType.GUID, "Account"),
        _lookup_connector(),
        _s("xdc_xeroaccountid", "Xero AccountID", 64, required=True),
        _s("xdc_code", "Code", 10),
        _s("xdc_name", "Name", 150, required=True),
        _s("xdc_type", "Type", 32),
        _s("xdc_class", "Class", 32),
        _s("xdc_status", "Xero status", 32),
        _s("xdc_taxtype", "Tax type", 64),
        Column("xdc_description", ColumnType.MEMO, "Description", max_length=4000),
        _s("xdc_reportingcode", "Reporting code", 64),
        _s("xdc_reportingcodename", "Reporting code name", 255),
        _s("xdc_systemaccount", "System account", 64),
        _s("xdc_bankaccountnumber", "Bank account number", 64),
        _s("xdc_bankaccounttype", "Bank account type", 32),
        _s("xdc_currencycode", "Currency", 8),
        Column("xdc_enablepaymentstoaccount", ColumnType.BOOL, "Enable payments to account"),
        Column("xdc_showinexpenseclaims", ColumnType.BOOL, "Show in expense claims"),
        Column("xdc_xeroupdatedutc", ColumnType.DATETIME, "Updated in Xero (UTC)"),
        Column("xdc_recordstate", ColumnType.CHOICE, "Present in Xero", choices=RecordState),
    ),
    alternate_key=("xdc_connectorid", "xdc_xeroaccountid"),
    alternate_key_name="xdc_chartofaccounts_connector_accountid",
    xero_key="AccountID",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
)

TAX_TYPE = Table(
    logical_name="xdc_taxtype",
    entity_set="xdc_taxtypes",
    display_name="Tax Type",
    primary_key="xdc_taxtypeid",
    primary_name="xdc_name",
    columns=(
        Column("xdc_taxtypeid", ColumnType.GUID, "Tax type"),
        _lookup_connector(),
        _s("xdc_xerotaxtype", "Xero TaxType", 64, required=True),
        _s("xdc_name", "Name", 150, required=True),
        _s("xdc_status", "Xero status", 32),
        _s("xdc_reporttaxtype", "Report tax type", 64),
        Column("xdc_effectiverate", ColumnType.DECIMAL, "Effective rate (%)"),
        Column("xdc_displayrate", ColumnType.DECIMAL, "Display rate (%)"),
        Column("xdc_components", ColumnType.MEMO, "Components", max_length=4000),
        Column("xdc_canapplytoassets", ColumnType.BOOL, "Applies to assets"),
        Column("xdc_canapplytoequity", ColumnType.BOOL, "Applies to equity"),
        Column("xdc_canapplytoexpenses", ColumnType.BOOL, "Applies to expenses"),
        Column("xdc_canapplytoliabilities", ColumnType.BOOL, "Applies to liabilities"),
        Column("xdc_canapplytorevenue", ColumnType.BOOL, "Applies to revenue"),
        Column("xdc_recordstate", ColumnType.CHOICE, "Present in Xero", choices=RecordState),
    ),
    alternate_key=("xdc_connectorid", "xdc_xerotaxtype"),
    alternate_key_name="xdc_taxtype_connector_taxtype",
    xero_key="TaxType",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
)

BRANDING_THEME = Table(
    logical_name="xdc_brandingtheme",
    entity_set="xdc_brandingthemes",
    display_name="Branding Theme",
    primary_key="xdc_brandingthemeid",
    primary_name="xdc_name",
    columns=(
        Column("xdc_brandingthemeid", ColumnType.GUID, "Branding theme"),
        _lookup_connector(),
        _s("xdc_xerobrandingthemeid", "Xero BrandingThemeID", 64, required=True),
        _s("xdc_name", "Name", 150, required=True),
        Column("xdc_sortorder", ColumnType.INT, "Sort order"),
        _s("xdc_type", "Type", 32),
        _s("xdc_logourl", "Logo URL", 500),
        Column("xdc_xerocreatedutc", ColumnType.DATETIME, "Created in Xero (UTC)"),
        Column("xdc_recordstate", ColumnType.CHOICE, "Present in Xero", choices=RecordState),
    ),
    alternate_key=("xdc_connectorid", "xdc_xerobrandingthemeid"),
    alternate_key_name="xdc_brandingtheme_connector_themeid",
    xero_key="BrandingThemeID",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
)

ALL_TABLES: tuple[Table, ...] = (CONNECTOR, CONNECTOR_SETTINGS, CHART_OF_ACCOUNTS, TAX_TYPE, BRANDING_THEME)
SYNCED_TABLES: tuple[Table, ...] = (CHART_OF_ACCOUNTS, TAX_TYPE, BRANDING_THEME)
TABLES_BY_SET = {t.entity_set: t for t in ALL_TABLES}
TABLES_BY_NAME = {t.logical_name: t for t in ALL_TABLES}


class Privilege(StrEnum):
    CREATE = "Create"
    READ = "Read"
    WRITE = "Write"
    DELETE = "Delete"
    APPEND = "Append"
    APPEND_TO = "AppendTo"


# What a connector user needs on each of our tables (the security role ships exactly these).
REQUIRED_PRIVILEGES: tuple[Privilege, ...] = (
    Privilege.CREATE,
    Privilege.READ,
    Privilege.WRITE,
    Privilege.APPEND,
    Privilege.APPEND_TO,
)


def privilege_name(privilege: Privilege, table: Table) -> str:
    """Dataverse names privileges `prv{Op}{SchemaName}`; our schema names equal the logical names."""
    return f"prv{privilege.value}{table.logical_name}"


@dataclass(frozen=True)
class SecurityRole:
    name: str
    privileges: tuple[str, ...] = field(default_factory=tuple)


CONNECTOR_USER_ROLE = SecurityRole(
    name=SECURITY_ROLE_NAME,
    privileges=tuple(privilege_name(p, t) for t in ALL_TABLES for p in REQUIRED_PRIVILEGES),
)
