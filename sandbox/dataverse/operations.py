"""Single-row operations on a table: create, retrieve, update, upsert (by id or alternate key), delete.

Semantics follow dataverse.md section 3: POST 204 + OData-EntityId (201 with return=representation);
PATCH is an upsert unless `If-Match` (update only, 404 0x80040217 if missing) or `If-None-Match: *` (create
only, 412 if present); an ETag in If-Match that differs is 412; key columns in the body win on create and
are ignored on an update through that key. Privileges are checked on our tables (Create, Read, Write,
Delete, Append, AppendTo), as Dataverse checks the caller's roles.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from sandbox.dataverse import errors, odata
from sandbox.dataverse.model import ColumnType, Depth, Privilege, RequiredLevel
from sandbox.dataverse.payload import EntityBody, parse_entity
from sandbox.dataverse.schema import ColumnSpec, TableSpec
from sandbox.dataverse.store import VERSION, EnvironmentState, Member, Row, TableStore
from sandbox.dataverse.wire import ApiResponse, etag, iso, represent

API_PATH = "/api/data/v9.2/"


@dataclass
class Caller:
    env: EnvironmentState
    member: Member
    api_base: str  # {env url}/api/data/v9.2
    content_ids: dict[str, str] = field(default_factory=dict)  # "$1" -> entity URL, inside a change set

    def require(self, privilege: Privilege, spec: TableSpec, row: Row | None = None) -> Depth:
        """The depth the caller holds `privilege` at on this table; 403 if not at all, or (given a row) if
        the depth does not reach it: Basic reaches only the caller's own rows
        (https://learn.microsoft.com/power-platform/admin/security-roles-privileges#access-levels).
        One business unit is modelled, so Local and Deep reach every row, like Global."""
        name = f"prv{privilege.value}{spec.schema}"
        if not spec.custom:
            if privilege != Privilege.READ:
                raise self._denied(name, spec)
            return Depth.GLOBAL
        depth = self.env.privileges(self.member).get(name)
        if depth is None:
            raise self._denied(name, spec)
        if row is not None and not self.reaches(depth, row):
            raise self._denied(name, spec)
        return depth

    def reaches(self, depth: Depth, row: Row) -> bool:
        return depth != Depth.BASIC or row.get("ownerid") in (None, self.member.systemuser_id)

    def _denied(self, name: str, spec: TableSpec) -> errors.DataverseError:
        return errors.privilege_denied(
            user_id=self.member.systemuser_id,
            role_count=len(self.member.roles),
            privilege_count=len(self.env.privileges(self.member)),
            privilege=name,
            privilege_id=self.env.privilege_id(name),
            logical_name=spec.logical_name,
            otc=spec.object_type_code,
        )

    def store(self, entity_set: str) -> TableStore:
        store = self.env.tables.get(entity_set)
        if store is None:
            raise errors.segment_not_found(entity_set)
        return store

    def entity_url(self, spec: TableSpec, row_id: str) -> str:
        return f"{self.api_base}/{spec.entity_set}({row_id})"


# Locating rows -------------------------------------------------------------------------------------------

Locator = str | dict[str, Any]  # a primary key, or alternate key column -> value


def locate(store: TableStore, key_text: str) -> Locator:
    parsed = odata.parse_key(key_text)
    if isinstance(parsed, str):
        return parsed
    spec = store.spec
    if not store.key_active():
        # The key's index is still being built (EntityKeyIndexStatus Pending/InProgress): the key cannot be
        # used yet. The docs give no error text for this; we answer as for a key that is not defined.
        raise errors.bad_query(
            f"The key '{key_text}' is not an active alternate key of entity '{spec.logical_name}': its index is "
            "still being created."
        )
    # A lookup that is part of an alternate key is named by its lookup property, `_x_value`, as the
    # real Web API requires ("you must use the name of the corresponding Lookup Property").
    renamed: dict[str, Any] = {}
    for name, literal in parsed.items():
        column = spec.by_wire.get(name)
        if column is not None and column.type == ColumnType.LOOKUP and name != column.name:
            renamed[column.name] = literal
        elif name in spec.by_name and spec.by_name[name].type == ColumnType.LOOKUP:
            raise errors.bad_query(
                f"The key in the request URI is not valid for resource 'Microsoft.Dynamics.CRM.{spec.logical_name}'. "
                f"Use the lookup property '_{name}_value' for the lookup column '{name}'."
            )
        else:
            renamed[name] = literal
    parsed = renamed
    if not spec.alternate_key or set(parsed) != set(spec.alternate_key):
        raise errors.bad_query(
            f"The key '{key_text}' does not match the primary key or an alternate key of entity '{spec.logical_name}'."
        )
    values: dict[str, Any] = {}
    for name, literal in parsed.items():
        column = spec.by_name[name]
        expected = "Edm.Guid" if column.type in (ColumnType.LOOKUP, ColumnType.GUID) else "Edm.String"
        if column.type in (ColumnType.INT, ColumnType.CHOICE):
            expected = "Edm.Int32"
        if literal.edm != expected:
            raise errors.bad_query(
                f"The key value for '{name}' is of type '{literal.edm}'; the property is of type '{expected}'."
            )
        values[name] = literal.value
    return values


def find(store: TableStore, locator: Locator) -> Row | None:
    if isinstance(locator, str):
        return store.get(locator)
    row_id = store.find_key(locator)
    return store.get(row_id) if row_id else None


def not_found(store: TableStore, locator: Locator) -> errors.DataverseError:
    if isinstance(locator, str):
        return errors.record_not_found(store.spec.logical_name, locator)
    return errors.key_not_found(store.spec.logical_name)


def split_reference(reference: str) -> tuple[str, str]:
    """`/xdc_connectors(<guid>)`, `xdc_connectors(...)` or an absolute URL -> (entity set, key text)."""
    path = urlsplit(reference).path if "://" in reference else reference
    if API_PATH in path:
        path = path.split(API_PATH, 1)[1]
    path = path.strip("/")
    if not path.endswith(")") or "(" not in path:
        raise errors.bad_query(f"The reference '{reference}' is not a valid entity URL.")
    entity_set, _, key = path[:-1].partition("(")
    return unquote(entity_set), unquote(key)


def resolve_reference(caller: Caller, reference: str) -> tuple[TableStore, Row]:
    if reference.startswith("$"):
        if reference not in caller.content_ids:
            raise ContentIdMissing(reference)
        reference = caller.content_ids[reference]
    entity_set, key = split_reference(reference)
    store = caller.store(entity_set)
    locator = locate(store, key)
    row = find(store, locator)
    if row is None:
        raise not_found(store, locator)
    return store, row


class ContentIdMissing(Exception):
    def __init__(self, reference: str) -> None:
        super().__init__(f"Content-ID Reference: '{reference}' does not exist in the batch context.")


def bind_resolver(caller: Caller) -> Any:
    def resolve(column: ColumnSpec, reference: str) -> str:
        store, row = resolve_reference(caller, reference)
        if store.spec.logical_name != column.target:
            raise errors.payload_error(
                column.name,
                f"The entity set '{store.spec.entity_set}' is not a valid target for the navigation property "
                f"'{column.navigation}'.",
            )
        caller.require(Privilege.APPEND_TO, store.spec, row)
        return str(row[store.spec.primary_key])

    return resolve


def read_body(caller: Caller, store: TableStore, data: dict[str, Any]) -> EntityBody:
    return parse_entity(data, store.spec, bind_resolver(caller))


# Writes ----------------------------------------------------------------------------------------------------


def insert(caller: Caller, store: TableStore, body: EntityBody, key_values: dict[str, Any] | None = None) -> Row:
    spec = store.spec
    caller.require(Privilege.CREATE, spec)
    if body.binds:
        caller.require(Privilege.APPEND, spec)
    row_id = str(body.values.get(spec.primary_key) or (key_values or {}).get(spec.primary_key) or uuid.uuid4())
    if store.get(row_id) is not None:
        raise errors.duplicate_id()
    now = iso(caller.env.clock.now())
    version = caller.env.next_version()
    row: Row = {column.name: None for column in spec.columns}
    row.update({
        "createdon": now, "modifiedon": now, "statecode": 0, "statuscode": 1,
        "ownerid": caller.member.systemuser_id, "owningbusinessunit": caller.env.seed.root_business_unit_id,
        "createdby": caller.member.systemuser_id, "modifiedby": caller.member.systemuser_id,
    })
    row.update(key_values or {})
    row.update(body.values)
    row[spec.primary_key] = row_id.lower()
    row["versionnumber"] = row[VERSION] = version
    _check_required(spec, row)
    _check_unique(store, row)
    store.put(row)
    return row


def update(caller: Caller, store: TableStore, row: Row, body: EntityBody, *, keep: tuple[str, ...] = ()) -> Row:
    spec = store.spec
    caller.require(Privilege.WRITE, spec, row)
    if body.binds:
        caller.require(Privilege.APPEND, spec)
    new = dict(row)
    for name, value in body.values.items():
        if name == spec.primary_key or name in keep:
            continue
        new[name] = value
    new["modifiedon"] = iso(caller.env.clock.now())
    new["modifiedby"] = caller.member.systemuser_id
    new["versionnumber"] = new[VERSION] = caller.env.next_version()
    _check_required(spec, new)
    _check_unique(store, new)
    store.put(new)
    return new


def _check_required(spec: TableSpec, row: Row) -> None:
    """System-required columns must have a value; application-required ("business required") ones are
    only enforced by forms, never by the Web API
    (https://learn.microsoft.com/power-apps/maker/data-platform/types-of-fields#column-requirement-level)."""
    for column in spec.columns:
        if column.required_level == RequiredLevel.SYSTEM_REQUIRED and column.writable and row.get(column.name) is None:
            raise errors.required_missing(spec.logical_name, column.name)


def _check_unique(store: TableStore, row: Row) -> None:
    spec = store.spec
    if not spec.alternate_key:
        return
    other = store.find_key(row)
    if other is not None and other != str(row[spec.primary_key]).lower():
        labels = [spec.by_name[name].label or name for name in spec.alternate_key]
        raise errors.duplicate_entity_key(labels, spec.alternate_key_name)


def upsert(
    caller: Caller, store: TableStore, locator: Locator, body: EntityBody, *, if_match: str = "", if_none_match: str = ""
) -> tuple[Row, bool]:
    """Create or update the row `locator` names; returns (row, created)."""
    existing = find(store, locator)
    if if_none_match == "*":
        if existing is not None:
            raise errors.matching_key_exists()
    elif if_match:
        if existing is None:
            raise not_found(store, locator)
        if if_match.strip() != "*" and etag(int(existing[VERSION])) not in [t.strip() for t in if_match.split(",")]:
            raise errors.version_mismatch()
    if existing is not None:
        keep = store.spec.alternate_key if isinstance(locator, dict) else ()
        return update(caller, store, existing, body, keep=keep), False
    key_values = {store.spec.primary_key: locator} if isinstance(locator, str) else dict(locator)
    if isinstance(locator, dict):
        for name, value in locator.items():
            column = store.spec.by_name[name]
            if column.type == ColumnType.LOOKUP and column.target:
                # A lookup in the key URL sets the lookup on create: the target must exist, as with a bind.
                bind_resolver(caller)(column, f"{_set_of(caller, column.target)}({value})")
                body.binds.append(column)
    return insert(caller, store, body, key_values), True


def delete(caller: Caller, store: TableStore, locator: Locator, if_match: str = "") -> None:
    spec = store.spec
    row = find(store, locator)
    if row is None:
        raise not_found(store, locator)
    caller.require(Privilege.DELETE, spec, row)
    if if_match and if_match.strip() != "*" and etag(int(row[VERSION])) != if_match.strip():
        raise errors.version_mismatch()
    row_id = str(row[spec.primary_key])
    store.remove(row_id)
    # Each relationship's CascadeDelete decides what happens to the rows that point at this one: Cascade
    # deletes them, RemoveLink (the default for custom lookups) clears the lookup, Restrict refuses
    # (https://learn.microsoft.com/power-apps/developer/data-platform/configure-entity-relationship-cascading-behavior).
    for other in caller.env.custom_specs():
        other_store = caller.env.tables.get(other.entity_set)
        referencing = [c for c in other.columns if c.type == ColumnType.LOOKUP and c.target == spec.logical_name]
        if not referencing or other_store is None:
            continue
        for candidate in list(other_store.rows.values()):
            pointing = [c for c in referencing if candidate.get(c.name) == row_id]
            if not pointing:
                continue
            if any(c.cascade_delete == "Restrict" for c in pointing):
                raise errors.DataverseError(
                    400, "0x80040203", f"The record cannot be deleted because it is referenced by {other.logical_name}."
                )
            if any(c.cascade_delete == "Cascade" for c in pointing):
                other_store.remove(str(candidate[other.primary_key]))
                continue
            cleared = dict(candidate)
            cleared.update({c.name: None for c in pointing})
            cleared["versionnumber"] = cleared[VERSION] = caller.env.next_version()
            other_store.put(cleared)


def _set_of(caller: Caller, logical_name: str) -> str:
    return caller.env.specs[logical_name].entity_set


# Responses ---------------------------------------------------------------------------------------------------


def prefers(header: str, preference: str) -> bool:
    return preference in [item.strip() for item in header.split(",")]


def write_response(
    caller: Caller, store: TableStore, row: Row, *, created: bool, prefer: str, select: list[str] | None,
    key_text: str | None = None,
) -> ApiResponse:
    """An upsert through an alternate key answers with the key form of the URL, not the GUID
    (https://learn.microsoft.com/power-apps/developer/data-platform/use-upsert-insert-update-record#use-web-api)."""
    if key_text is not None:
        url = f"{caller.api_base}/{store.spec.entity_set}({key_text})"
    else:
        url = caller.entity_url(store.spec, str(row[store.spec.primary_key]))
    headers = {"OData-EntityId": url}
    if prefers(prefer, "return=representation"):
        body = {"@odata.context": context_url(caller, store.spec, select, entity=True)}
        body.update(represent(store.spec, row, select))
        headers["Preference-Applied"] = "return=representation"
        headers["ETag"] = etag(int(row[VERSION]))
        return ApiResponse.json(201 if created else 200, body, headers, writes=1)
    return ApiResponse.empty(204, headers, writes=1)


def context_url(caller: Caller, spec: TableSpec, select: list[str] | None, *, entity: bool = False) -> str:
    selected = f"({','.join(select)})" if select else ""
    suffix = "/$entity" if entity else ""
    return f"{caller.api_base}/$metadata#{spec.entity_set}{selected}{suffix}"
