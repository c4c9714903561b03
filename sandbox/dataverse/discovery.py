"""Global Discovery Service: `GET /api/discovery/v2.0/Instances` lists the environments the caller is
provisioned in (enabled and disabled, with `State`), with `$select` and case-sensitive `$filter`.

Key lookups `Instances(<guid>)` and `Instances(UniqueName='x')` still answer with an array.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, unquote

from sandbox.dataverse import errors, odata
from sandbox.dataverse.seed import SYSTEM_ADMINISTRATOR, VERSION
from sandbox.dataverse.store import EnvironmentState
from sandbox.dataverse.wire import ApiResponse, iso

PROPERTIES: dict[str, str] = {
    "Id": "Edm.Guid",
    "UniqueName": "Edm.String",
    "UrlName": "Edm.String",
    "FriendlyName": "Edm.String",
    "State": "Edm.Int32",
    "Version": "Edm.String",
    "Url": "Edm.String",
    "ApiUrl": "Edm.String",
    "LastUpdated": "Edm.DateTimeOffset",
    "Region": "Edm.String",
    "TenantId": "Edm.Guid",
    "EnvironmentId": "Edm.String",
    "IsUserSysAdmin": "Edm.Boolean",
    "OrganizationType": "Edm.Int32",
    "Purpose": "Edm.String",
    "TrialExpirationDate": "Edm.DateTimeOffset",
}
SCHEMA = odata.Schema(PROPERTIES, "Microsoft.Xrm.Sdk.Discovery.Instance", case_sensitive=True)


def instance(env: EnvironmentState, oid: str) -> dict[str, Any]:
    member = env.members[oid]
    return {
        "Id": env.seed.organization_id,
        "UniqueName": env.seed.unique_name,
        "UrlName": env.seed.url_name,
        "FriendlyName": env.seed.friendly_name,
        "State": env.state,
        "Version": VERSION,
        "Url": env.url,
        "ApiUrl": env.api_url,
        "LastUpdated": iso(env.clock.now()),
        "Region": env.seed.region,
        "TenantId": env.seed.tenant_id,
        "EnvironmentId": env.seed.environment_id,
        "IsUserSysAdmin": SYSTEM_ADMINISTRATOR in member.roles,
        "OrganizationType": 0,
        "Purpose": "",
        "TrialExpirationDate": None,
    }


def instances(base_url: str, environments: Iterable[EnvironmentState], tenant_id: str, oid: str, key: str | None, query: str) -> ApiResponse:
    rows = [instance(env, oid) for env in environments if env.seed.tenant_id == tenant_id and oid in env.members]
    if key is not None:
        rows = _by_key(rows, unquote(key))
    select: list[str] | None = None
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name == "$filter":
            predicate = odata.compile_filter(value, SCHEMA)
            rows = [row for row in rows if predicate(row)]
        elif name == "$select":
            select = odata.parse_select(value, SCHEMA)
        elif name.startswith("$"):
            raise errors.bad_query(f"The query parameter {name} is not supported")
    selected = f"({','.join(select)})" if select else ""
    if select is not None:
        rows = [{name: row[name] for name in select} for row in rows]
    return ApiResponse.json(200, {
        "@odata.context": f"{base_url}/api/discovery/v2.0/$metadata#Instances{selected}",
        "value": rows,
    })


def _by_key(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    parsed = odata.parse_key(key)
    if isinstance(parsed, str):
        return [row for row in rows if row["Id"] == parsed]
    for name in parsed:
        if name not in ("UniqueName", "UrlName"):
            raise SCHEMA.unknown(name)
    return [row for row in rows if all(row[name] == literal.value for name, literal in parsed.items())]
