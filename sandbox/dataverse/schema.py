"""Table schemas the sandbox serves: our tables from bot/sync/tables.py plus the system tables a client reads.

Columns are keyed by logical name. On the wire a lookup column `x` is written `x@odata.bind` and read as
`_x_value`; every other column is read and written under its logical name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.sync import tables as product
from bot.sync.tables import ColumnType


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColumnType
    label: str = ""
    max_length: int | None = None
    choices: tuple[int, ...] | None = None
    target: str | None = None  # lookup target logical name
    writable: bool = True

    @property
    def wire(self) -> str:
        return f"_{self.name}_value" if self.type == ColumnType.LOOKUP else self.name


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    entity_set: str
    primary_key: str
    columns: tuple[ColumnSpec, ...]
    alternate_key: tuple[str, ...] = ()
    alternate_key_name: str = ""
    custom: bool = False  # ships in our solution: exists only where it is installed, needs privileges
    object_type_code: int = 0
    by_name: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)
    by_wire: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "by_wire", {c.wire: c for c in self.columns})

    def column(self, name: str) -> ColumnSpec | None:
        return self.by_name.get(name)


def _system_columns() -> tuple[ColumnSpec, ...]:
    """Columns Dataverse adds to every user- or team-owned custom table."""
    return (
        ColumnSpec("createdon", ColumnType.DATETIME, "Created On", writable=False),
        ColumnSpec("modifiedon", ColumnType.DATETIME, "Modified On", writable=False),
        ColumnSpec("versionnumber", ColumnType.INT, "Version Number", writable=False),
        ColumnSpec("statecode", ColumnType.CHOICE, "Status", choices=(0, 1)),
        ColumnSpec("statuscode", ColumnType.CHOICE, "Status Reason", choices=(1, 2)),
        ColumnSpec("ownerid", ColumnType.LOOKUP, "Owner", target="systemuser", writable=False),
        ColumnSpec("owningbusinessunit", ColumnType.LOOKUP, "Owning Business Unit", target="businessunit", writable=False),
        ColumnSpec("createdby", ColumnType.LOOKUP, "Created By", target="systemuser", writable=False),
        ColumnSpec("modifiedby", ColumnType.LOOKUP, "Modified By", target="systemuser", writable=False),
    )


def _from_product(table: product.Table, otc: int) -> TableSpec:
    columns = tuple(
        ColumnSpec(
            name=c.name,
            type=c.type,
            label=c.label,
            max_length=c.max_length,
            choices=tuple(int(v) for v in c.choices) if c.choices else None,
            target=c.target,
        )
        for c in table.columns
    )
    return TableSpec(
        logical_name=table.logical_name,
        entity_set=table.entity_set,
        primary_key=table.primary_key,
        columns=columns + _system_columns(),
        alternate_key=table.alternate_key,
        alternate_key_name=table.alternate_key_name,
        custom=True,
        object_type_code=otc,
    )


CUSTOM_TABLES: tuple[TableSpec, ...] = tuple(
    _from_product(table, 10400 + index) for index, table in enumerate(product.ALL_TABLES)
)

_S = ColumnType.STRING
SYSTEM_USER = TableSpec(
    logical_name="systemuser",
    entity_set="systemusers",
    primary_key="systemuserid",
    columns=(
        ColumnSpec("systemuserid", ColumnType.GUID),
        ColumnSpec("fullname", _S, max_length=200),
        ColumnSpec("firstname", _S, max_length=256),
        ColumnSpec("lastname", _S, max_length=256),
        ColumnSpec("domainname", _S, max_length=1024),
        ColumnSpec("internalemailaddress", _S, max_length=100),
        ColumnSpec("azureactivedirectoryobjectid", ColumnType.GUID),
        ColumnSpec("isdisabled", ColumnType.BOOL),
        ColumnSpec("accessmode", ColumnType.CHOICE),
        ColumnSpec("businessunitid", ColumnType.LOOKUP, target="businessunit"),
    ),
    object_type_code=8,
)
SOLUTION = TableSpec(
    logical_name="solution",
    entity_set="solutions",
    primary_key="solutionid",
    columns=(
        ColumnSpec("solutionid", ColumnType.GUID),
        ColumnSpec("uniquename", _S, max_length=65),
        ColumnSpec("friendlyname", _S, max_length=256),
        ColumnSpec("version", _S, max_length=256),
        ColumnSpec("ismanaged", ColumnType.BOOL),
        ColumnSpec("isvisible", ColumnType.BOOL),
        ColumnSpec("installedon", ColumnType.DATETIME),
        ColumnSpec("publisherid", ColumnType.LOOKUP, target="publisher"),
    ),
    object_type_code=7100,
)
USER_SETTINGS = TableSpec(
    logical_name="usersettings",
    entity_set="usersettingscollection",
    primary_key="systemuserid",
    columns=(
        ColumnSpec("systemuserid", ColumnType.GUID),
        ColumnSpec("timezonecode", ColumnType.INT),
        ColumnSpec("localeid", ColumnType.INT),
        ColumnSpec("uilanguageid", ColumnType.INT),
        ColumnSpec("businessunitid", ColumnType.LOOKUP, target="businessunit"),
    ),
    object_type_code=150,
)
TIME_ZONE_DEFINITION = TableSpec(
    logical_name="timezonedefinition",
    entity_set="timezonedefinitions",
    primary_key="timezonedefinitionid",
    columns=(
        ColumnSpec("timezonedefinitionid", ColumnType.GUID),
        ColumnSpec("timezonecode", ColumnType.INT),
        ColumnSpec("standardname", _S, max_length=100),
        ColumnSpec("daylightname", _S, max_length=100),
        ColumnSpec("userinterfacename", _S, max_length=100),
        ColumnSpec("bias", ColumnType.INT),
    ),
    object_type_code=4810,
)
ROLE = TableSpec(
    logical_name="role",
    entity_set="roles",
    primary_key="roleid",
    columns=(
        ColumnSpec("roleid", ColumnType.GUID),
        ColumnSpec("name", _S, max_length=100),
        ColumnSpec("ismanaged", ColumnType.BOOL),
        ColumnSpec("businessunitid", ColumnType.LOOKUP, target="businessunit"),
    ),
    object_type_code=1036,
)
BUSINESS_UNIT = TableSpec(
    logical_name="businessunit",
    entity_set="businessunits",
    primary_key="businessunitid",
    columns=(
        ColumnSpec("businessunitid", ColumnType.GUID),
        ColumnSpec("name", _S, max_length=160),
        ColumnSpec("parentbusinessunitid", ColumnType.LOOKUP, target="businessunit"),
    ),
    object_type_code=10,
)
SYSTEM_TABLES: tuple[TableSpec, ...] = (SYSTEM_USER, SOLUTION, USER_SETTINGS, TIME_ZONE_DEFINITION, ROLE, BUSINESS_UNIT)
SPECS_BY_LOGICAL: dict[str, TableSpec] = {t.logical_name: t for t in CUSTOM_TABLES + SYSTEM_TABLES}
