"""Solution import, as the Web API offers it, and what it does to an environment.

    POST ImportSolution        {CustomizationFile, OverwriteUnmanagedCustomizations, PublishWorkflows, ImportJobId}
        -> 204 once imported (the action returns nothing), or the error; the import job records either
        (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/importsolution)
    POST ImportSolutionAsync   same parameters -> 200 {AsyncOperationId, ImportJobKey}
        (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/importsolutionasync,
        .../importsolutionasyncresponse); poll `asyncoperations(<id>)` (statecode 0 Ready / 2 Locked /
        3 Completed; statuscode 0 WaitingForResources / 20 InProgress / 30 Succeeded / 31 Failed:
        https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation) and
        `importjobs(<id>)` (progress, data = the import log XML, completedon:
        https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/importjob).

An async import runs on the sandbox clock: it starts at the first request after it was queued and
completes `import_seconds` later (0 by default: at the next request). An import either applies entirely
or leaves the environment as it was (components, rows, roles), and says why in the job and operation.
"""

from __future__ import annotations

import base64
import binascii
import copy
import uuid
from dataclasses import dataclass, replace
from typing import Any
from xml.sax.saxutils import quoteattr

from sandbox.dataverse import errors
from sandbox.dataverse.model import IMPORT_CUSTOMIZATIONS, ColumnType
from sandbox.dataverse.schema import ColumnSpec, TableSpec, system_columns
from sandbox.dataverse.solution import (
    EntityDef,
    RelationshipDef,
    SolutionPackage,
    read_package,
    version_tuple,
)
from sandbox.dataverse.store import EnvironmentState, InstalledSolution, Member, TableStore
from sandbox.dataverse.wire import ApiResponse, is_guid, iso
from sandbox.entra.directory import sandbox_uuid

# Tables every environment has, which a package may point lookups at without shipping them.
SYSTEM_TARGETS = frozenset({"systemuser", "businessunit", "team", "organization", "transactioncurrency", "owner"})
_SYSTEM_COLUMNS = {column.name: column for column in system_columns()}


def lock_error() -> errors.DataverseError:
    # Dataverse runs one solution operation at a time (CustomizationLockException); the text follows the
    # Microsoft support article "Concurrent solution operation failures in Power Apps" (Power Platform
    # troubleshooting, "Working with Solutions"). The code 0x80071151 and status 429 are what clients report
    # seeing; the docs do not give them.
    return errors.DataverseError(
        429, "0x80071151",
        "Cannot start the requested operation [Import] because there is another [Import] running at this moment. "
        "Use Solution History for more details.",
    )


def downgrade_error() -> errors.DataverseError:
    # KB 4499878 (error 80048541): a managed solution only upgrades to a higher version.
    return errors.DataverseError(
        400, "0x80048541", "The import solution must have a higher version than the existing solution it is upgrading."
    )


@dataclass
class PendingImport:
    async_id: str
    job_id: str
    data: bytes
    queued_at: float
    member_id: str


# The Web API actions -------------------------------------------------------------------------------------


def import_sync(env: EnvironmentState, member: Member, body: dict[str, Any], api_base: str) -> ApiResponse:
    data, job_id = _parameters(env, member, body, require_job=True)
    _insert_job(env, job_id)
    try:
        package = apply(env, data)
    except errors.DataverseError as error:
        _finish_job(env, job_id, None, error)
        raise
    _finish_job(env, job_id, package, None)
    return ApiResponse.empty(204, writes=1)


def import_async(env: EnvironmentState, member: Member, body: dict[str, Any], api_base: str) -> ApiResponse:
    data, job_id = _parameters(env, member, body, require_job=False)
    async_id = str(uuid.uuid4())
    now = iso(env.clock.now())
    env.insert_system("asyncoperations", {
        "asyncoperationid": async_id, "name": "ImportSolution", "operationtype": None, "statecode": 0,
        "statuscode": 0, "message": None, "friendlymessage": None, "correlationid": str(uuid.uuid4()),
        "createdon": now, "startedon": None, "completedon": None,
    })
    _insert_job(env, job_id)
    env.jobs.append(PendingImport(async_id, job_id, data, env.clock.time(), member.systemuser_id))
    return ApiResponse.json(200, {
        "@odata.context": f"{api_base}/$metadata#Microsoft.Dynamics.CRM.ImportSolutionAsyncResponse",
        "AsyncOperationId": async_id,
        "ImportJobKey": job_id,
    }, writes=1)


def tick(env: EnvironmentState) -> None:
    """Move queued imports on, by the sandbox clock (called before each request to the environment)."""
    for job in list(env.jobs):
        operation = env.tables["asyncoperations"].get(job.async_id)
        if operation is None:
            env.jobs.remove(job)
            continue
        if operation["statecode"] == 0:
            _update(env, "asyncoperations", job.async_id, statecode=2, statuscode=20, startedon=iso(env.clock.now()))
        if env.clock.time() < job.queued_at + env.import_seconds:
            continue
        env.jobs.remove(job)
        try:
            package = apply(env, job.data)
        except errors.DataverseError as error:
            _finish_job(env, job.job_id, None, error)
            _update(env, "asyncoperations", job.async_id, statecode=3, statuscode=31, completedon=iso(env.clock.now()),
                    message=f"{error.code}: {error.message}", friendlymessage=error.message)
            continue
        _finish_job(env, job.job_id, package, None)
        _update(env, "asyncoperations", job.async_id, statecode=3, statuscode=30, completedon=iso(env.clock.now()))


def _parameters(env: EnvironmentState, member: Member, body: dict[str, Any], *, require_job: bool) -> tuple[bytes, str]:
    held = env.privileges(member)
    if IMPORT_CUSTOMIZATIONS not in held:
        raise errors.missing_privilege(
            user_id=member.systemuser_id, role_count=len(member.roles), privilege_count=len(held),
            privilege=IMPORT_CUSTOMIZATIONS, privilege_id=env.privilege_id(IMPORT_CUSTOMIZATIONS),
        )
    required = ["CustomizationFile", "OverwriteUnmanagedCustomizations", "PublishWorkflows"]
    required += ["ImportJobId"] if require_job else []
    for name in required:
        if body.get(name) is None:
            raise errors.bad_query(f"The parameter '{name}' is required and cannot be null.")
    raw = body["CustomizationFile"]
    try:
        data = base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        raise errors.bad_query("Cannot convert the literal to the expected type 'Edm.Binary'.") from None
    job_id = str(body.get("ImportJobId") or uuid.uuid4()).lower()
    if not is_guid(job_id):
        raise errors.bad_query(f"Cannot convert the literal '{job_id}' to the expected type 'Edm.Guid'.")
    if env.jobs:
        raise lock_error()
    return data, job_id


# Applying a package -----------------------------------------------------------------------------------------


def apply(env: EnvironmentState, data: bytes, *, key_delay: float | None = None) -> SolutionPackage:
    """Import the package into env, entirely or not at all."""
    package = read_package(data)
    installed = env.solutions.get(package.unique_name)
    if installed is not None and installed.managed and version_tuple(package.version) <= version_tuple(installed.version):
        raise downgrade_error()
    snapshot = (dict(env.tables), dict(env.specs), copy.deepcopy(env.roles), dict(env.role_ids), dict(env.option_sets),
                copy.deepcopy(env.solutions), dict(env.key_ready_at))
    try:
        with env.transaction():
            _apply(env, package, installed, env.key_delay if key_delay is None else key_delay)
    except BaseException:
        (env.tables, env.specs, env.roles, env.role_ids, env.option_sets, env.solutions,
         env.key_ready_at) = snapshot
        raise
    return package


def _apply(env: EnvironmentState, package: SolutionPackage, installed: InstalledSolution | None, key_delay: float) -> None:
    now = iso(env.clock.now())
    publisher_id = sandbox_uuid(f"publisher:{package.publisher.unique_name}")
    if env.tables["publishers"].get(publisher_id) is None:
        env.insert_system("publishers", {
            "publisherid": publisher_id, "uniquename": package.publisher.unique_name,
            "friendlyname": package.publisher.friendly_name, "customizationprefix": package.publisher.prefix,
            "customizationoptionvalueprefix": package.publisher.option_value_prefix,
        })
    env.option_sets.update(package.option_sets)
    targets = {(r.referencing_entity, r.referencing_attribute): r for r in package.relationships}
    record = installed or InstalledSolution(
        package.unique_name, sandbox_uuid(f"solution:{env.seed.unique_name}:{package.unique_name}"),
        package.version, package.managed,
    )
    for entity in package.entities:
        old = env.specs.get(entity.logical_name)
        # Custom tables get object type codes from 10000 up; an upgraded table keeps its own.
        otc = old.object_type_code if old else max([10000] + [t.object_type_code + 1 for t in env.custom_specs()])
        spec = _table(env, entity, targets, otc)
        store = TableStore(spec, env)
        previous = env.tables.get(old.entity_set) if old is not None else None
        if previous is not None:
            # An upgrade changes the table in place and keeps its rows.
            env.tables.pop(previous.spec.entity_set, None)
            for row in previous.rows.values():
                store.rows[str(row[spec.primary_key])] = row
            store.reindex()
        env.specs[spec.logical_name] = spec
        env.tables[spec.entity_set] = store
        if spec.alternate_key and (old is None or old.alternate_key != spec.alternate_key):
            # A new key's index is built by a system job after the import (EntityKeyIndexStatus Pending -> Active).
            env.key_ready_at[spec.logical_name] = env.clock.time() + key_delay
        record.tables.add(spec.logical_name)
    for relationship in package.relationships:
        # Checked once every table of the package exists: a missing one fails the import half-way.
        for table in (relationship.referencing_entity, relationship.referenced_entity):
            if table not in env.specs and table not in SYSTEM_TARGETS and table not in package.referenced_entities:
                raise errors.DataverseError(
                    400, "0x80048033",
                    f"The import of solution {package.unique_name} failed: relationship {relationship.name} needs "
                    f"the table '{table}', which is neither in the solution nor in the environment.",
                )
    for role in package.roles:
        env.roles[role.name] = dict(role.privileges)
        if role.name not in env.role_ids:
            env.add_role(role.name, role.role_id or sandbox_uuid(f"role:{env.seed.unique_name}:{role.name}"),
                         managed=package.managed)
        record.roles.add(role.name)
    record.option_sets.update(package.option_sets)
    record.version, record.managed = package.version, package.managed
    row = {
        "solutionid": record.solution_id, "uniquename": package.unique_name, "friendlyname": package.friendly_name,
        "version": package.version, "ismanaged": package.managed, "isvisible": True, "installedon": now,
        "publisherid": publisher_id,
    }
    existing = env.tables["solutions"].get(record.solution_id)
    if existing is not None:
        row["installedon"] = existing["installedon"]
    env.insert_system("solutions", row)
    env.solutions[package.unique_name] = record


def _table(env: EnvironmentState, entity: EntityDef, targets: dict[tuple[str, str], RelationshipDef], otc: int) -> TableSpec:
    columns: list[ColumnSpec] = []
    for column in entity.columns:
        if column.name in _SYSTEM_COLUMNS:
            continue  # the platform's own definition (read-only where the platform sets it)
        if column.name in entity.option_set_refs:
            name = entity.option_set_refs[column.name]
            if name not in env.option_sets:
                raise errors.DataverseError(
                    400, "0x80048033", f"The option set '{name}' used by {entity.logical_name}.{column.name} does not exist."
                )
            column = replace(column, choices=env.option_sets[name])
        relationship = targets.get((entity.logical_name, column.name))
        if column.type == ColumnType.LOOKUP and relationship is not None:
            column = replace(column, target=relationship.referenced_entity, cascade_delete=relationship.cascade_delete)
        columns.append(column)
    names = {c.name for c in columns}
    columns += [c for c in system_columns() if c.name not in names]
    key = entity.keys[0] if entity.keys else None
    by_name = {c.name: c for c in columns}
    if key is not None:
        unknown = [a for a in key.attributes if a not in by_name]
        if unknown:
            raise errors.DataverseError(
                400, "0x80048033", f"The key {key.logical_name} of {entity.logical_name} names unknown columns {unknown}."
            )
    return TableSpec(
        logical_name=entity.logical_name,
        entity_set=entity.entity_set,
        primary_key=entity.primary_key,
        columns=tuple(columns),
        alternate_key=key.attributes if key else (),
        alternate_key_name=key.logical_name if key else "",
        custom=True,
        object_type_code=otc,
        schema_name=entity.schema_name,
        primary_name=entity.primary_name,
        alternate_key_display=key.display if key else "",
        user_owned=entity.user_owned,
    )


def uninstall(env: EnvironmentState, unique_name: str) -> None:
    """Deleting a managed solution deletes its tables, their data, its roles and option sets."""
    record = env.solutions.pop(unique_name, None)
    if record is None:
        return
    for table in record.tables:
        spec = env.specs.pop(table, None)
        if spec is not None:
            env.tables.pop(spec.entity_set, None)
        env.key_ready_at.pop(table, None)
    for role in record.roles:
        env.roles.pop(role, None)
        role_id = env.role_ids.pop(role, None)
        if role_id:
            env.tables["roles"].remove(role_id)
        for member in env.members.values():
            member.roles.discard(role)
    for name in record.option_sets:
        env.option_sets.pop(name, None)
    env.tables["solutions"].remove(record.solution_id)


# Jobs -------------------------------------------------------------------------------------------------------


def _insert_job(env: EnvironmentState, job_id: str) -> None:
    now = iso(env.clock.now())
    env.insert_system("importjobs", {
        "importjobid": job_id, "name": "Customizations", "solutionname": None, "progress": 0.0,
        "data": None, "startedon": now, "completedon": None, "createdon": now,
    })


def _finish_job(env: EnvironmentState, job_id: str, package: SolutionPackage | None, error: errors.DataverseError | None) -> None:
    now = iso(env.clock.now())
    result = (
        '<result result="success" errorcode="0" errortext="" />' if error is None
        else f"<result result=\"failure\" errorcode={quoteattr(error.code)} errortext={quoteattr(error.message)} />"
    )
    components = ""
    if package is not None:
        components = "<entities>" + "".join(
            f"<entity id={quoteattr(e.logical_name)} LocalizedName={quoteattr(e.display)} processed=\"true\">{result}</entity>"
            for e in package.entities
        ) + "</entities><roles>" + "".join(
            f"<role id={quoteattr(r.role_id)} LocalizedName={quoteattr(r.name)} processed=\"true\">{result}</role>"
            for r in package.roles
        ) + "</roles>"
        manifest = (
            f"<solutionManifests><solutionManifest languagecode=\"1033\" id={quoteattr(package.unique_name)} "
            f"LocalizedName={quoteattr(package.friendly_name)} processed=\"true\"><UniqueName>{package.unique_name}"
            f"</UniqueName><Version>{package.version}</Version><Managed>{int(package.managed)}</Managed>{result}"
            "</solutionManifest></solutionManifests>"
        )
        components = manifest + components
    log = f'<importexportxml start="{now}" stop="{now}" progress="100" processed="true">{components}{result}</importexportxml>'
    _update(env, "importjobs", job_id, progress=100.0, completedon=now, data=log,
            solutionname=package.unique_name if package else None)


def _update(env: EnvironmentState, entity_set: str, row_id: str, **values: Any) -> None:
    store = env.tables[entity_set]
    row = store.get(row_id)
    if row is None:
        return
    updated = dict(row)
    updated.update(values)
    env.insert_system(entity_set, updated)
