"""Scope strings to resources: `{resource}/user_impersonation`, `{resource}/.default`, Graph short names.

Entra issues one access token per resource (audience). A request naming two resources is rejected at the
token endpoint (AADSTS28000), though the authorize endpoint may collect consent for several.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.entra import errors
from sandbox.entra.directory import (
    GRAPH_AUDIENCE,
    MICROSOFT_GRAPH,
    OIDC_SCOPES,
    AppRegistration,
    ResourceApp,
)

DEFAULT_SCOPE = ".default"


def normalise_audience(url: str) -> str:
    return url.rstrip("/").lower()


class ResourceRegistry:
    """Which audience URLs belong to which resource app (Dataverse registers GDS and every environment)."""

    def __init__(self) -> None:
        self._by_audience: dict[str, tuple[str, ResourceApp]] = {}
        self.register(GRAPH_AUDIENCE, MICROSOFT_GRAPH)

    def register(self, audience: str, app: ResourceApp) -> None:
        self._by_audience[normalise_audience(audience)] = (audience.rstrip("/"), app)

    def find(self, audience: str) -> tuple[str, ResourceApp] | None:
        return self._by_audience.get(normalise_audience(audience))


@dataclass(frozen=True)
class ResourceScopes:
    audience: str
    app: ResourceApp
    names: tuple[str, ...]  # as requested: ("user_impersonation",) or (".default",)

    def granted(self, registration: AppRegistration) -> tuple[str, ...]:
        if self.names == (DEFAULT_SCOPE,):
            return registration.required_permissions.get(self.app.app_id, ())
        return self.names

    def wire(self, names: tuple[str, ...]) -> tuple[str, ...]:
        if self.app.short_scope_names:
            return names
        return tuple(f"{self.audience}/{name}" for name in names)


@dataclass(frozen=True)
class ScopeRequest:
    raw: str
    oidc: frozenset[str]
    resources: tuple[ResourceScopes, ...]

    def single_resource(self) -> ResourceScopes:
        """The one resource a token is for; only OIDC scopes means a token for Microsoft Graph."""
        if len(self.resources) > 1:
            raise errors.several_resources(self.raw)
        if not self.resources:
            return ResourceScopes(GRAPH_AUDIENCE, MICROSOFT_GRAPH, ("User.Read",))
        return self.resources[0]


def parse_scopes(raw: str, registry: ResourceRegistry, registration: AppRegistration, tenant_name: str) -> ScopeRequest:
    oidc: set[str] = set()
    grouped: dict[str, tuple[str, ResourceApp, list[str]]] = {}
    for item in raw.split():
        if item in OIDC_SCOPES:
            oidc.add(item)
            continue
        if "/" in item:
            audience, _, name = item.rpartition("/")
            found = registry.find(audience)
            if found is None:
                raise errors.unknown_resource(audience, tenant_name)
        else:
            found, name = registry.find(GRAPH_AUDIENCE), item
        assert found is not None
        canonical, app = found
        if name != DEFAULT_SCOPE and name not in app.scopes:
            raise errors.unknown_scope(registration.client_id, item, app.app_id)
        entry = grouped.setdefault(normalise_audience(canonical), (canonical, app, []))
        entry[2].append(name)
    resources: list[ResourceScopes] = []
    for canonical, app, names in grouped.values():
        if DEFAULT_SCOPE in names and len(names) > 1:
            raise errors.AadError(
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope '{raw}' does not "
                "exist or combines '.default' with other scopes of the same resource.",
            )
        resources.append(ResourceScopes(canonical, app, tuple(dict.fromkeys(names))))
    return ScopeRequest(raw=raw, oidc=frozenset(oidc), resources=tuple(resources))
