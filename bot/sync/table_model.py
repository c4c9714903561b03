"""The model our Dataverse tables are described in: columns, tables, relationships, option sets, roles.

The definitions themselves (which tables, which columns) live in `bot.sync.tables`, which re-exports
every name here; import from there. The naming rules the model encodes (schema vs logical names,
navigation properties, option-value prefixes, privilege names) are documented at the top of that module.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field, replace
from enum import IntEnum, StrEnum


@dataclass(frozen=True)
class Publisher:
    unique_name: str
    friendly_name: str
    prefix: str  # customizationprefix: 2-8 lower-case letters, never "mscrm"
    option_value_prefix: int  # 10000-99999: custom choice values start at prefix * 10,000
    description: str = ""



# The first version of our solution that shipped these tables: compatibility checks compare against it.
FIRST_VERSION = "1.0.0.0"


class ColumnType(StrEnum):
    STRING = "string"  # Edm.String, single line (nvarchar)
    MEMO = "memo"  # Edm.String, multiple lines (ntext)
    INT = "int"  # Edm.Int32 (whole number)
    DECIMAL = "decimal"  # Edm.Decimal with a precision
    BOOL = "bool"  # Edm.Boolean (two options)
    DATETIME = "datetime"  # Edm.DateTimeOffset (UTC)
    CHOICE = "choice"  # Edm.Int32 option set (picklist)
    LOOKUP = "lookup"  # Edm.Guid, written as `<SchemaName>@odata.bind`, read as `_name_value`
    GUID = "guid"  # Edm.Guid (primary key)


class RequiredLevel(StrEnum):
    """AttributeRequiredLevel as customizations.xml writes it (`<RequiredLevel>`)."""

    NONE = "none"
    RECOMMENDED = "recommended"
    APPLICATION_REQUIRED = "required"  # "Business required" in the maker portal
    SYSTEM_REQUIRED = "systemrequired"


class Ownership(StrEnum):
    USER = "UserOwned"
    ORGANIZATION = "OrgOwned"


class Depth(StrEnum):
    """Privilege depth, as RetrieveUserPrivileges returns it and a role's RolePrivilege `level` writes it."""

    BASIC = "Basic"  # the user's own rows ("User")
    LOCAL = "Local"  # the user's business unit
    DEEP = "Deep"  # the business unit and its children
    GLOBAL = "Global"  # the whole organization

    @property
    def rank(self) -> int:
        return list(Depth).index(self)


@dataclass(frozen=True)
class OptionSet:
    """A global choice: one definition shared by every column that uses it."""

    name: str  # logical name, `xdc_recordstate`
    display_name: str
    options: builtins.type[IntEnum]
    labels: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Column:
    name: str  # logical name (lower case)
    type: ColumnType
    label: str
    max_length: int | None = None
    required: bool = False
    choices: builtins.type[IntEnum] | None = None
    target: str | None = None  # lookup target logical name
    schema_name: str = ""  # casing kept; defaults to `name`
    precision: int | None = None  # decimals: places kept (Dataverse rounds to it on write)
    min_value: float | None = None
    max_value: float | None = None
    description: str = ""
    introduced: str = FIRST_VERSION
    # A lookup's relationship: what deleting the referenced row does to this one (CascadeDelete).
    cascade_delete: str = "Cascade"

    @property
    def schema(self) -> str:
        return self.schema_name or self.name

    @property
    def required_level(self) -> RequiredLevel:
        if self.type is ColumnType.GUID:
            return RequiredLevel.SYSTEM_REQUIRED
        return RequiredLevel.APPLICATION_REQUIRED if self.required else RequiredLevel.NONE

    @property
    def navigation_property(self) -> str:
        """The single-valued navigation property that sets this lookup: its schema name, case kept."""
        if self.type is not ColumnType.LOOKUP:
            raise ValueError(f"{self.name} is not a lookup")
        return self.schema

    @property
    def lookup_value(self) -> str:
        """How a read (and an alternate key naming this lookup) spells it: `_xdc_connectorid_value`."""
        return f"_{self.name}_value"


@dataclass(frozen=True)
class Relationship:
    """A one-to-many relationship created with a lookup: `referenced` (one) to `referencing` (many).

    Its schema name is also the collection-valued navigation property on the referenced table."""

    schema_name: str
    referenced: str  # the table the lookup points at (xdc_connector)
    referencing: str  # the table that holds the lookup
    lookup: str  # the lookup column's logical name
    cascade_delete: str = "Cascade"  # deleting a connector deletes what was synced for it


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
    schema_name: str = ""
    plural_name: str = ""
    description: str = ""
    ownership: Ownership = Ownership.USER
    alternate_key_display: str = ""
    introduced: str = FIRST_VERSION

    def __post_init__(self) -> None:
        _SCHEMAS[self.logical_name] = self.schema

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.logical_name} has no column {name}")

    @property
    def schema(self) -> str:
        return self.schema_name or self.logical_name

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def lookup_bind(self, column: str) -> str:
        """The annotation that sets a lookup: `<navigation property>@odata.bind`, where the navigation
        property is the lookup's schema name, case-sensitive (`xdc_ConnectorId@odata.bind`)."""
        return f"{self.column(column).navigation_property}@odata.bind"

    @property
    def relationships(self) -> tuple[Relationship, ...]:
        """The one-to-many relationships this table's lookups create."""
        return tuple(
            Relationship(
                schema_name=f"{_table_schema(c.target or '')}_{self.schema}",
                referenced=c.target or "",
                referencing=self.logical_name,
                lookup=c.name,
                cascade_delete=c.cascade_delete,
            )
            for c in self.columns
            if c.type is ColumnType.LOOKUP
        )


# Schema names of the defined tables, by logical name (each Table adds itself): a relationship is named
# after the table its lookup points at (`xdc_Connector_xdc_ChartOfAccounts`), and `relationships` is only
# read once every table is defined.
_SCHEMAS: dict[str, str] = {}


def _table_schema(logical_name: str) -> str:
    return _SCHEMAS.get(logical_name, logical_name)


class Privilege(StrEnum):
    CREATE = "Create"
    READ = "Read"
    WRITE = "Write"
    DELETE = "Delete"
    APPEND = "Append"
    APPEND_TO = "AppendTo"
    ASSIGN = "Assign"
    SHARE = "Share"

    @property
    def words(self) -> str:
        """As the security role editor shows it to a Dynamics admin."""
        return {"AppendTo": "Append To"}.get(self.value, self.value)


def privilege_name(privilege: Privilege, table: Table) -> str:
    """`prv{Verb}{EntitySchemaName}`, e.g. `prvAppendToxdc_Connector`."""
    return f"prv{privilege.value}{table.schema}"


@dataclass(frozen=True)
class RolePrivilege:
    name: str
    depth: Depth
    privilege: Privilege
    table: str  # logical name


@dataclass(frozen=True)
class SecurityRole:
    name: str
    role_privileges: tuple[RolePrivilege, ...] = ()
    description: str = ""
    privileges: tuple[str, ...] = field(default_factory=tuple)


# Shorthands the definitions in `bot.sync.tables` are written with.


def string_column(name: str, schema: str, label: str, max_length: int, required: bool = False) -> Column:
    return Column(name, ColumnType.STRING, label, max_length=max_length, required=required, schema_name=schema)


def bool_column(name: str, schema: str, label: str) -> Column:
    return Column(name, ColumnType.BOOL, label, schema_name=schema)


def datetime_column(name: str, schema: str, label: str) -> Column:
    return Column(name, ColumnType.DATETIME, label, schema_name=schema)


def choice_column(name: str, schema: str, label: str, choices: builtins.type[IntEnum]) -> Column:
    return Column(name, ColumnType.CHOICE, label, choices=choices, schema_name=schema)


def rate_column(name: str, schema: str, label: str) -> Column:
    # Xero gives tax rates with 4 decimal places (e.g. 12.5000, 8.8750); Dataverse's default is 2.
    return Column(
        name, ColumnType.DECIMAL, label, schema_name=schema, precision=4, min_value=-1000.0, max_value=1000.0
    )


def key_column(name: str, schema: str, label: str) -> Column:
    return Column(name, ColumnType.GUID, label, schema_name=schema)



def since(version: str, *columns: Column) -> tuple[Column, ...]:
    return tuple(replace(c, introduced=version) for c in columns)

