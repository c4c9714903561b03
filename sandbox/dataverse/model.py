"""The sandbox's own vocabulary for Dataverse metadata: column types, privileges, depths, required levels.

Deliberately independent of the product (`bot`): the sandbox learns tables by importing a solution
package, the way an environment does, so it must not share the product's definitions.
"""

from __future__ import annotations

from enum import StrEnum


class ColumnType(StrEnum):
    STRING = "string"  # customizations.xml `nvarchar`
    MEMO = "memo"  # `ntext`
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"  # `bit`
    DATETIME = "datetime"
    CHOICE = "choice"  # `picklist`, `state`, `status`
    LOOKUP = "lookup"  # `lookup`, `owner`, `customer`
    GUID = "guid"  # `primarykey`, `uniqueidentifier`


class Privilege(StrEnum):
    """Table privileges, named `prv{Verb}{TableSchemaName}` (https://learn.microsoft.com/power-platform/admin/security-roles-privileges)."""

    CREATE = "Create"
    READ = "Read"
    WRITE = "Write"
    DELETE = "Delete"
    APPEND = "Append"
    APPEND_TO = "AppendTo"
    ASSIGN = "Assign"
    SHARE = "Share"


class Depth(StrEnum):
    """A role's grant of a privilege: RolePrivilege `level` in customizations.xml (PrivilegeLevelType)."""

    BASIC = "Basic"
    LOCAL = "Local"
    DEEP = "Deep"
    GLOBAL = "Global"

    @property
    def rank(self) -> int:
        return list(Depth).index(self)


class RequiredLevel(StrEnum):
    """AttributeRequiredLevel as `<RequiredLevel>` writes it."""

    NONE = "none"
    RECOMMENDED = "recommended"
    APPLICATION_REQUIRED = "required"
    SYSTEM_REQUIRED = "systemrequired"


IMPORT_CUSTOMIZATIONS = "prvImportCustomization"
