"""`GET /api/data/v9.2/$metadata`: the CSDL of the tables this environment has (ours only where installed).

A much smaller document than Dataverse's (no base types, functions or actions), but the same shapes for what
it does describe: entity types with their key, properties as their Edm types (`_x_value` for lookups),
single-valued navigation properties for lookups, and one entity set per table.
"""

from __future__ import annotations

from collections.abc import Iterable
from xml.sax.saxutils import quoteattr

from sandbox.dataverse.model import ColumnType
from sandbox.dataverse.schema import TableSpec

_EDM = {
    ColumnType.STRING: "Edm.String",
    ColumnType.MEMO: "Edm.String",
    ColumnType.INT: "Edm.Int32",
    ColumnType.CHOICE: "Edm.Int32",
    ColumnType.DECIMAL: "Edm.Decimal",
    ColumnType.BOOL: "Edm.Boolean",
    ColumnType.DATETIME: "Edm.DateTimeOffset",
    ColumnType.LOOKUP: "Edm.Guid",
    ColumnType.GUID: "Edm.Guid",
}


def csdl(specs: Iterable[TableSpec]) -> str:
    types: list[str] = []
    sets: list[str] = []
    for spec in sorted(specs, key=lambda s: s.logical_name):
        members = [f"<Key><PropertyRef Name={quoteattr(spec.primary_key)} /></Key>"]
        for column in spec.columns:
            length = f" MaxLength=\"{column.max_length}\"" if column.max_length else ""
            members.append(f"<Property Name={quoteattr(column.wire)} Type=\"{_EDM[column.type]}\"{length} />")
            if column.type == ColumnType.LOOKUP and column.target:
                members.append(
                    f"<NavigationProperty Name={quoteattr(column.navigation)} Type=\"mscrm.{column.target}\" />"
                )
        types.append(f"<EntityType Name={quoteattr(spec.logical_name)}>{''.join(members)}</EntityType>")
        sets.append(
            f"<EntitySet Name={quoteattr(spec.entity_set)} EntityType=\"Microsoft.Dynamics.CRM.{spec.logical_name}\" />"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx"><edmx:DataServices>'
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">'
        f"{''.join(types)}<EntityContainer Name=\"System\">{''.join(sets)}</EntityContainer>"
        "</Schema></edmx:DataServices></edmx:Edmx>"
    )
