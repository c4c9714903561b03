"""Routing one Web API operation (a request, or a part of a $batch) to what serves it.

    GET  ""                                     service document
    GET  $metadata                              CSDL of the tables present
    GET  WhoAmI                                 BusinessUnitId, UserId, OrganizationId
    POST $batch                                 see batch.py
    POST ImportSolution | ImportSolutionAsync   see importer.py
    GET  systemusers(<id>)/Microsoft.Dynamics.CRM.RetrieveUserPrivileges()
    POST {set}/Microsoft.Dynamics.CRM.{CreateMultiple|UpdateMultiple|UpsertMultiple}
    GET/POST {set}; GET/PATCH/DELETE {set}(<id>) or {set}(<alternate key>)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from sandbox.dataverse import batch, bulk, errors, importer, metadata, operations, query
from sandbox.dataverse.model import Privilege
from sandbox.dataverse.operations import Caller, ContentIdMissing
from sandbox.dataverse.payload import load_json
from sandbox.dataverse.wire import ApiRequest, ApiResponse

_SEGMENT = re.compile(r"^(?P<name>[^(/]+)(?:\((?P<key>.*)\))?$")
ACTION_PREFIX = "Microsoft.Dynamics.CRM."


def dispatch(caller: Caller, request: ApiRequest, *, top_level: bool = True) -> ApiResponse:
    """Serve one operation; Dataverse errors become their JSON responses."""
    try:
        return _route(caller, request, top_level)
    except errors.DataverseError as error:
        return ApiResponse.json(error.status, error.body(), error.headers)
    except ContentIdMissing as missing:
        if not top_level:
            raise  # the whole batch fails, as Dataverse fails it
        failure = errors.bad_query(str(missing))
        return ApiResponse.json(failure.status, failure.body())


def _route(caller: Caller, request: ApiRequest, top_level: bool) -> ApiResponse:
    path = request.path
    if path.startswith("$") and not path.startswith("$batch") and not path.startswith("$metadata"):
        reference, _, remainder = path.partition("/")
        if reference not in caller.content_ids:
            raise ContentIdMissing(reference)
        entity = caller.content_ids[reference].split(operations.API_PATH, 1)[1]
        path = f"{entity}/{remainder}" if remainder else entity
    segments = [segment for segment in _split_path(path) if segment]
    method = request.method
    if not segments:
        _only(method, "GET")
        return _service_document(caller)
    head = segments[0]
    if head == "$batch":
        if not top_level:
            raise errors.bad_query("A batch request cannot contain another batch request.")
        _only(method, "POST")
        return _batch(caller, request)
    if head == "$metadata":
        _only(method, "GET")
        document = metadata.csdl(store.spec for store in caller.env.tables.values())
        return ApiResponse(200, {"Content-Type": "application/xml", "OData-Version": "4.0"}, document.encode())
    if head in ("WhoAmI", "WhoAmI()"):
        _only(method, "GET")
        return _who_am_i(caller)
    if head in ("ImportSolution", "ImportSolutionAsync"):
        if not top_level:
            raise errors.bad_query(f"The action {head} cannot be part of a batch request in this sandbox.")
        _only(method, "POST")
        parameters = load_json(request.body, head)
        run = importer.import_sync if head == "ImportSolution" else importer.import_async
        return run(caller.env, caller.member, parameters, caller.api_base)
    if head.startswith("EntityDefinitions("):
        _only(method, "GET")
        return _entity_keys(caller, head, segments[1:])
    match = _SEGMENT.match(head)
    if match is None:
        raise errors.segment_not_found(head)
    entity_set, key = unquote(match.group("name")), match.group("key")
    store = caller.store(entity_set)
    if len(segments) == 2 and segments[1].startswith(ACTION_PREFIX):
        action = segments[1][len(ACTION_PREFIX):]
        if key is None and action in bulk.ACTIONS:
            _only(method, "POST")
            return bulk.run(caller, store, action, request.body)
        if key is not None and entity_set == "systemusers" and action in ("RetrieveUserPrivileges", "RetrieveUserPrivileges()"):
            _only(method, "GET")
            return _user_privileges(caller, unquote(key))
        raise errors.segment_not_found(segments[1])
    if len(segments) > 1:
        raise errors.segment_not_found(segments[1])
    prefer = request.header("prefer")
    if key is None:
        if method == "GET":
            return query.collection(caller, store, request.query, prefer)
        _only(method, "POST")
        body = operations.read_body(caller, store, load_json(request.body, store.spec.entity_set))
        row = operations.insert(caller, store, body)
        return operations.write_response(caller, store, row, created=True, prefer=prefer, select=_select(store, request))
    locator = operations.locate(store, unquote(key))
    if method == "GET":
        return query.retrieve(caller, store, locator, request.query, request.header("if-none-match"))
    if method == "PATCH":
        body = operations.read_body(caller, store, load_json(request.body, store.spec.entity_set))
        if_none_match = request.header("if-none-match")
        row, created = operations.upsert(
            caller,
            store,
            locator,
            body,
            if_match=request.header("if-match"),
            if_none_match="" if if_none_match == "null" else if_none_match,
        )
        return operations.write_response(
            caller, store, row, created=created, prefer=prefer, select=_select(store, request),
            key_text=key if isinstance(locator, dict) else None,
        )
    if method == "DELETE":
        with caller.env.transaction():  # a cascade that fails half-way deletes nothing
            operations.delete(caller, store, locator, request.header("if-match"))
        return ApiResponse.empty(204, writes=1)
    raise errors.method_not_allowed(method)


def _split_path(path: str) -> list[str]:
    """Split on '/' outside parentheses (a key value may contain an encoded or literal slash)."""
    segments: list[str] = []
    current: list[str] = []
    depth = 0
    quoted = False
    for char in path:
        if char == "'":
            quoted = not quoted
        if not quoted:
            depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "/" and depth == 0 and not quoted:
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return segments


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise errors.method_not_allowed(method)


def _select(store: Any, request: ApiRequest) -> list[str] | None:
    return query.QueryOptions.parse(request.query).select(store.spec)


def _service_document(caller: Caller) -> ApiResponse:
    value = [{"name": name, "kind": "EntitySet", "url": name} for name in sorted(caller.env.tables)]
    return ApiResponse.json(200, {"@odata.context": f"{caller.api_base}/$metadata", "value": value})


def _who_am_i(caller: Caller) -> ApiResponse:
    return ApiResponse.json(200, {
        "@odata.context": f"{caller.api_base}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
        "BusinessUnitId": caller.env.seed.root_business_unit_id,
        "UserId": caller.member.systemuser_id,
        "OrganizationId": caller.env.seed.organization_id,
    })


def _user_privileges(caller: Caller, key: str) -> ApiResponse:
    store = caller.store("systemusers")
    caller.require(Privilege.READ, store.spec)
    locator = operations.locate(store, key)
    row = operations.find(store, locator)
    if row is None:
        raise operations.not_found(store, locator)
    member = next((m for m in caller.env.members.values() if m.systemuser_id == row["systemuserid"]), None)
    held = caller.env.privileges(member) if member else {}
    business_unit = caller.env.seed.root_business_unit_id
    privileges = [
        {
            "Depth": str(depth),
            "PrivilegeId": caller.env.privilege_id(name),
            "BusinessUnitId": business_unit,
            "PrivilegeName": name,
        }
        for name, depth in sorted(held.items())
    ]
    return ApiResponse.json(200, {
        "@odata.context": f"{caller.api_base}/$metadata#Microsoft.Dynamics.CRM.RetrieveUserPrivilegesResponse",
        "RolePrivileges": privileges,
    })


def _batch(caller: Caller, request: ApiRequest) -> ApiResponse:
    parts = batch.parse(request.body, request.header("content-type"))
    continue_on_error = operations.prefers(request.header("prefer"), "odata.continue-on-error")

    def run(part_request: ApiRequest, content_ids: dict[str, str]) -> ApiResponse:
        part_caller = Caller(caller.env, caller.member, caller.api_base, content_ids)
        return dispatch(part_caller, part_request, top_level=False)

    try:
        status, body, content_type, writes = batch.execute(parts, run, caller.env.transaction, continue_on_error)
    except ContentIdMissing as missing:
        raise errors.bad_query(str(missing)) from None
    headers = {"Content-Type": content_type, "OData-Version": "4.0"}
    if continue_on_error:
        headers["Preference-Applied"] = "odata.continue-on-error"
    return ApiResponse(status, headers, body, writes)


_DEFINITION = re.compile(r"^EntityDefinitions\(LogicalName='(?P<name>[a-z0-9_]+)'\)$")


def _entity_keys(caller: Caller, head: str, rest: list[str]) -> ApiResponse:
    """`EntityDefinitions(LogicalName='x')/Keys`: the table's alternate keys with their index status.

    EntityKeyMetadata.EntityKeyIndexStatus is Pending, InProgress, Active or Failed (EntityKeyIndexStatus
    EnumType, https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/mt608118(v=crm.8));
    a key is usable only once Active. Only the Keys collection of a table is modelled here."""
    match = _DEFINITION.match(unquote(head))
    if match is None or rest != ["Keys"]:
        raise errors.segment_not_found(head if match is None else "/".join(rest) or head)
    spec = caller.env.specs.get(match.group("name"))
    if spec is None:
        raise errors.segment_not_found(head)
    keys = []
    if spec.alternate_key:
        keys.append({
            "LogicalName": spec.alternate_key_name,
            "KeyAttributes": list(spec.alternate_key),
            "EntityKeyIndexStatus": "Active" if caller.env.key_active(spec) else "Pending",
        })
    body = {"@odata.context": f"{caller.api_base}/$metadata#EntityDefinitions('{spec.logical_name}')/Keys", "value": keys}
    return ApiResponse.json(200, body)
