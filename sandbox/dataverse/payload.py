"""Entity bodies in: JSON checked against the table schema and turned into column values.

Unknown properties, wrong types, strings over their maximum length, numbers outside the column's range and
choice values outside its option set are rejected as Dataverse rejects them; decimals are rounded to the
column's precision (https://learn.microsoft.com/power-apps/maker/data-platform/types-of-fields#decimal-number).
Lookups are written only as `<navigation property>@odata.bind`, the property named by the lookup's schema
name, case-sensitive: OData property names are case-sensitive, so `xdc_connectorid@odata.bind` for the
navigation property `xdc_ConnectorId` is an undeclared property
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/associate-disassociate-entities-using-web-api).
Writing `_x_value` or a lookup as a plain value is an error. Read-only system columns are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandbox.dataverse import errors
from sandbox.dataverse.model import ColumnType
from sandbox.dataverse.schema import ColumnSpec, TableSpec
from sandbox.dataverse.wire import is_guid, iso, parse_datetime

BIND = "@odata.bind"
ResolveBind = Callable[[ColumnSpec, str], str]


@dataclass
class EntityBody:
    values: dict[str, Any] = field(default_factory=dict)
    binds: list[ColumnSpec] = field(default_factory=list)
    odata_type: str | None = None
    odata_id: str | None = None


def load_json(raw: bytes, entity_set: str) -> dict[str, Any]:
    try:
        data = json.loads(raw.decode("utf-8") or "null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise errors.payload_error(entity_set, "Invalid JSON. The request body could not be read.") from None
    if not isinstance(data, dict):
        raise errors.payload_error(
            entity_set, "An unexpected 'StartArray' node was found. A 'StartObject' node was expected."
        )
    return data


def parse_entity(data: dict[str, Any], spec: TableSpec, resolve_bind: ResolveBind) -> EntityBody:
    body = EntityBody()
    for name, value in data.items():
        if name == "@odata.type":
            body.odata_type = str(value)
            continue
        if name == "@odata.id":
            body.odata_id = str(value)
            continue
        if name.endswith(BIND):
            column = spec.by_navigation.get(name[: -len(BIND)])
            if column is None or not column.writable:
                raise errors.unknown_navigation(spec.entity_set, name[: -len(BIND)])
            if value is None:
                body.values[column.name] = None
            elif not isinstance(value, str):
                raise errors.payload_error(
                    spec.entity_set, f"An unexpected value was found for the '{name}' annotation: a URL was expected."
                )
            else:
                body.values[column.name] = resolve_bind(column, value)
            body.binds.append(column)
            continue
        if name.startswith("@") or "@" in name:
            continue  # instance annotations (etag, formatted values) carry no data
        column = spec.column(name)
        if column is None:
            if name in spec.by_wire:
                raise errors.lookup_value_write()
            raise errors.unknown_body_property(spec.entity_set, spec.logical_name, name)
        if column.type == ColumnType.LOOKUP:
            raise errors.payload_error(
                spec.entity_set,
                "An unexpected 'PrimitiveValue' node was found when reading from the JSON reader. A 'StartObject' "
                "node was expected.",
            )
        if not column.writable:
            continue
        body.values[column.name] = convert(spec, column, value)
    return body


def convert(spec: TableSpec, column: ColumnSpec, value: Any) -> Any:
    if value is None:
        return None
    kind = column.type

    def wrong(edm: str) -> errors.DataverseError:
        return errors.payload_error(
            spec.entity_set, f"Cannot convert the literal '{value}' to the expected type '{edm}'."
        )

    if kind in (ColumnType.STRING, ColumnType.MEMO):
        if not isinstance(value, str):
            raise wrong("Edm.String")
        if column.max_length is not None and len(value) > column.max_length:
            raise errors.too_long(spec.logical_name, column.name, column.max_length)
        return value
    if kind in (ColumnType.INT, ColumnType.CHOICE):
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("Edm.Int32")
        if not -(2**31) <= value < 2**31 or not _within(column, value):
            raise errors.out_of_range(spec.logical_name, column.name, value, None)
        if kind == ColumnType.CHOICE and column.choices is not None and value not in column.choices:
            raise errors.out_of_range(spec.logical_name, column.name, value, list(column.choices))
        return value
    if kind == ColumnType.DECIMAL:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("Edm.Decimal")
        places = column.precision if column.precision is not None else 2
        # SQL Server's decimal(p, s) rounds half away from zero, not to even.
        rounded = float(Decimal(repr(float(value))).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
        if not _within(column, rounded):
            raise errors.out_of_range(spec.logical_name, column.name, value, None)
        return rounded
    if kind == ColumnType.BOOL:
        if not isinstance(value, bool):
            raise wrong("Edm.Boolean")
        return value
    if kind == ColumnType.DATETIME:
        moment = parse_datetime(value) if isinstance(value, str) else None
        if moment is None:
            raise wrong("Edm.DateTimeOffset")
        return iso(moment)
    if kind == ColumnType.GUID:
        if not isinstance(value, str) or not is_guid(value):
            raise wrong("Edm.Guid")
        return value.lower()
    raise wrong("Edm.String")


def _within(column: ColumnSpec, value: float) -> bool:
    return (column.min_value is None or value >= column.min_value) and (
        column.max_value is None or value <= column.max_value
    )
