"""Table schemas the sandbox serves: the system tables a client reads, plus whatever tables a solution
import created (see solution.py), kept per environment.

Columns are keyed by logical name. On the wire a lookup column `x` is written through its single-valued
navigation property, named by the lookup's *schema name* with its casing (`xdc_ConnectorId@odata.bind`,
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api),
and read as `_x_value`; every other column is read and written under its logical name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.dataverse.model import ColumnType, RequiredLevel


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: ColumnType
    label: str = ""
    max_length: int | None = None
    choices: tuple[int, ...] | None = None
    target: str | None = None  # lookup target logical name
    writable: bool = True
    schema_name: str = ""  # casing kept; the navigation property of a lookup
    precision: int | None = None  # decimal places a decimal column keeps (rounded on write)
    required_level: RequiredLevel = RequiredLevel.NONE
    min_value: float | None = None
    max_value: float | None = None
    cascade_delete: str = "RemoveLink"  # what deleting the target does to rows that point at it

    @property
    def wire(self) -> str:
        return f"_{self.name}_value" if self.type == ColumnType.LOOKUP else self.name

    @property
    def navigation(self) -> str:
        """The single-valued navigation property a lookup is bound through: its schema name, case kept."""
        return self.schema_name or self.name


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    entity_set: str
    primary_key: str
    columns: tuple[ColumnSpec, ...]
    alternate_key: tuple[str, ...] = ()
    alternate_key_name: str = ""
    custom: bool = False  # came with a solution: exists only where imported, needs privileges
    object_type_code: int = 0
    schema_name: str = ""
    primary_name: str = ""
    alternate_key_display: str = ""
    user_owned: bool = True
    by_name: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)
    by_wire: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)
    by_navigation: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {c.name: c for c in self.columns})
        object.__setattr__(self, "by_wire", {c.wire: c for c in self.columns})
        object.__setattr__(
            self, "by_navigation", {c.navigation: c for c in self.columns if c.type == ColumnType.LOOKUP}
        )

    @property
    def schema(self) -> str:
        return self.schema_name or self.logical_name

    def column(self, name: str) -> ColumnSpec | None:
        return self.by_name.get(name)


def system_columns() -> tuple[ColumnSpec, ...]:
    """Columns Dataverse adds to every user- or team-owned custom table."""
    return (
        ColumnSpec("createdon", ColumnType.DATETIME, "Created On", writable=False),
        ColumnSpec("modifiedon", ColumnType.DATETIME, "Modified On", writable=False),
        ColumnSpec("versionnumber", ColumnType.INT, "Version Number", writable=False),
        ColumnSpec("statecode", ColumnType.CHOICE, "Status", choices=(0, 1)),
        ColumnSpec("statuscode", ColumnType.CHOICE, "Status Reason", choices=(1, 2)),
        ColumnSpec("ownerid", ColumnType.LOOKUP, "Owner", target="systemuser", writable=False, schema_name="ownerid"),
        ColumnSpec(
            "owningbusinessunit", ColumnType.LOOKUP, "Owning Business Unit", target="businessunit", writable=False,
            schema_name="owningbusinessunit",
        ),
        ColumnSpec("createdby", ColumnType.LOOKUP, "Created By", target="systemuser", writable=False, schema_name="createdby"),
        ColumnSpec("modifiedby", ColumnType.LOOKUP, "Modified By", target="systemuser", writable=False, schema_name="modifiedby"),
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
PUBLISHER = TableSpec(
    logical_name="publisher",
    entity_set="publishers",
    primary_key="publisherid",
    columns=(
        ColumnSpec("publisherid", ColumnType.GUID),
        ColumnSpec("uniquename", _S, max_length=256),
        ColumnSpec("friendlyname", _S, max_length=256),
        ColumnSpec("customizationprefix", _S, max_length=8),
        ColumnSpec("customizationoptionvalueprefix", ColumnType.INT),
    ),
    object_type_code=7101,
)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/importjob
IMPORT_JOB = TableSpec(
    logical_name="importjob",
    entity_set="importjobs",
    primary_key="importjobid",
    columns=(
        ColumnSpec("importjobid", ColumnType.GUID),
        ColumnSpec("name", _S, max_length=256),
        ColumnSpec("solutionname", _S, max_length=256),
        ColumnSpec("progress", ColumnType.DECIMAL),  # Edm.Double, percent
        ColumnSpec("data", ColumnType.MEMO, max_length=1073741823),  # the import log (XML)
        ColumnSpec("startedon", ColumnType.DATETIME),
        ColumnSpec("completedon", ColumnType.DATETIME),
        ColumnSpec("createdon", ColumnType.DATETIME),
    ),
    object_type_code=9107,
)
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
ASYNC_OPERATION = TableSpec(
    logical_name="asyncoperation",
    entity_set="asyncoperations",
    primary_key="asyncoperationid",
    columns=(
        ColumnSpec("asyncoperationid", ColumnType.GUID),
        ColumnSpec("name", _S, max_length=256),
        ColumnSpec("operationtype", ColumnType.INT),
        ColumnSpec("statecode", ColumnType.INT),  # 0 Ready, 1 Suspended, 2 Locked, 3 Completed
        ColumnSpec("statuscode", ColumnType.INT),  # 0 WaitingForResources, 10 Waiting, 20 InProgress, 30/31/32
        ColumnSpec("message", ColumnType.MEMO, max_length=1073741823),
        ColumnSpec("friendlymessage", ColumnType.MEMO, max_length=1073741823),
        ColumnSpec("correlationid", ColumnType.GUID),
        ColumnSpec("createdon", ColumnType.DATETIME),
        ColumnSpec("startedon", ColumnType.DATETIME),
        ColumnSpec("completedon", ColumnType.DATETIME),
    ),
    object_type_code=4700,
)
SYSTEM_TABLES: tuple[TableSpec, ...] = (
    SYSTEM_USER, SOLUTION, USER_SETTINGS, TIME_ZONE_DEFINITION, ROLE, BUSINESS_UNIT, PUBLISHER, IMPORT_JOB,
    ASYNC_OPERATION,
)
SYSTEM_SPECS: dict[str, TableSpec] = {t.logical_name: t for t in SYSTEM_TABLES}
