"""Bulk actions bound to an entity set: CreateMultiple, UpdateMultiple, UpsertMultiple.

`POST {set}/Microsoft.Dynamics.CRM.<Action>` with `{"Targets": [...]}`; every target needs `@odata.type`
naming the table. On standard tables the whole call is one transaction: any failure rolls back every
target and the response is that failure. CreateMultiple answers 200 with `Ids`; the others 204.

UpsertMultiple (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/upsertmultiple)
names each record by `@odata.id`, a relative URL with the alternate key (`set(key='v')`; a lookup in a key
is named `_x_value`, https://learn.microsoft.com/power-apps/developer/data-platform/use-alternate-key-reference-record),
or by the primary key in the target. Each target is an Upsert
(https://learn.microsoft.com/power-apps/developer/data-platform/use-upsert-insert-update-record): a new
record takes its key values from `@odata.id` unless the body sets them (the body wins); an existing record
ignores key values in the body. A target with neither `@odata.id` nor the primary key is refused: the docs
only show targets with `@odata.id`, so that is our reading (not confirmed against the service).
"""

from __future__ import annotations

from typing import Any

from sandbox.dataverse import errors
from sandbox.dataverse.model import ColumnType
from sandbox.dataverse.operations import (
    Caller,
    Locator,
    find,
    insert,
    locate,
    not_found,
    read_body,
    split_reference,
    update,
    upsert,
)
from sandbox.dataverse.payload import EntityBody, load_json
from sandbox.dataverse.store import TableStore
from sandbox.dataverse.wire import ApiResponse

ACTIONS = ("CreateMultiple", "UpdateMultiple", "UpsertMultiple")


def run(caller: Caller, store: TableStore, action: str, raw: bytes) -> ApiResponse:
    spec = store.spec
    data = load_json(raw, spec.entity_set)
    targets = data.get("Targets")
    if not isinstance(targets, list) or not targets:
        raise errors.payload_error(spec.entity_set, "The parameter 'Targets' must contain at least one entity.")
    expected = f"Microsoft.Dynamics.CRM.{spec.logical_name}"
    with caller.env.transaction():
        ids: list[str] = []
        for target in targets:
            if not isinstance(target, dict):
                raise errors.payload_error(spec.entity_set, "Each item of 'Targets' must be an entity.")
            odata_type = target.get("@odata.type")
            if odata_type is None:
                raise errors.payload_error(
                    spec.entity_set,
                    "The '@odata.type' annotation is required for every entity in the 'Targets' parameter.",
                )
            if odata_type not in (expected, f"#{expected}"):
                raise errors.payload_error(
                    spec.entity_set, f"The entity type '{odata_type}' does not match the entity set '{spec.entity_set}'."
                )
            body = read_body(caller, store, target)
            if action == "CreateMultiple":
                row = insert(caller, store, body)
            elif action == "UpdateMultiple":
                locator = _locator(store, body, target)
                existing = find(store, locator)
                if existing is None:
                    raise not_found(store, locator)
                row = update(caller, store, existing, body)
            else:
                row, _ = upsert(caller, store, _upsert_locator(store, body), body)
            ids.append(str(row[spec.primary_key]))
    if action == "CreateMultiple":
        payload: dict[str, Any] = {
            "@odata.context": f"{caller.api_base}/$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse",
            "Ids": ids,
        }
        return ApiResponse.json(200, payload, writes=len(ids))
    return ApiResponse.empty(204, writes=len(ids))


def _upsert_locator(store: TableStore, body: EntityBody) -> Locator:
    spec = store.spec
    if body.odata_id:
        entity_set, key = split_reference(body.odata_id)
        if entity_set != spec.entity_set:
            raise errors.payload_error(spec.entity_set, f"The '@odata.id' '{body.odata_id}' names another entity set.")
        return locate(store, key)
    if body.values.get(spec.primary_key):
        return str(body.values[spec.primary_key])
    raise errors.payload_error(
        spec.entity_set,
        "Each item of 'Targets' must identify its record: '@odata.id' with the alternate key "
        f"({spec.entity_set}({','.join(f'{name}=...' for name in spec.alternate_key)})) or the primary key "
        f"'{spec.primary_key}'.",
    )


def _locator(store: TableStore, body: EntityBody, target: dict[str, Any]) -> Locator:
    spec = store.spec
    if body.odata_id:
        entity_set, key = split_reference(body.odata_id)
        if entity_set != spec.entity_set:
            raise errors.payload_error(spec.entity_set, f"The '@odata.id' '{body.odata_id}' names another entity set.")
        return locate(store, key)
    if body.values.get(spec.primary_key):
        return str(body.values[spec.primary_key])
    if spec.alternate_key and all(body.values.get(name) is not None for name in spec.alternate_key):
        if not store.key_active():
            raise errors.bad_query(f"The alternate key of entity '{spec.logical_name}' is not active yet.")
        return {name: body.values[name] for name in spec.alternate_key}
    missing = [name for name in spec.alternate_key if body.values.get(name) is None]
    lookups = [name for name in missing if spec.by_name[name].type == ColumnType.LOOKUP]
    hint = f" (lookups as '{lookups[0]}@odata.bind')" if lookups else ""
    raise errors.payload_error(
        spec.entity_set,
        f"The target has neither '@odata.id', the primary key '{spec.primary_key}' nor the alternate key columns "
        f"{', '.join(spec.alternate_key) or '(none defined)'}{hint}.",
    )
