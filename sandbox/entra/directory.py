"""The sandbox directory: tenants, users, our app registration and the resource apps it may call.

Everything is deterministic (uuid5 of a readable name), so tests, the Dataverse sandbox and a developer
reading the login page all see the same ids run after run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

SANDBOX_NAMESPACE = uuid.UUID("6f1d0b9e-5a0c-4c55-9d43-2d7c8f4e1a20")


def sandbox_uuid(name: str) -> str:
    """A stable GUID for a sandbox object, e.g. `sandbox_uuid("user:alice@contoso.example")`."""
    return str(uuid.uuid5(SANDBOX_NAMESPACE, name))


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    domain: str


@dataclass(frozen=True)
class User:
    upn: str
    password: str
    given_name: str
    surname: str
    tenant_id: str
    note: str = ""

    @property
    def oid(self) -> str:
        return sandbox_uuid(f"user:{self.upn}")

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.surname}"


@dataclass(frozen=True)
class ResourceApp:
    """A first-party API (a service principal in every tenant) that tokens can be issued for."""

    app_id: str
    name: str
    scopes: tuple[str, ...]
    # Scope descriptions for the consent page.
    descriptions: dict[str, str] = field(default_factory=dict)
    # Graph's scopes are written without a resource prefix; everything else is `{resource}/{scope}`.
    short_scope_names: bool = False
    accepts_v1_tokens: bool = True


@dataclass(frozen=True)
class AppRegistration:
    client_id: str
    client_secret: str
    display_name: str
    publisher_tenant_id: str
    # Static (portal-configured) permissions: what `/.default` expands to, per resource app id.
    required_permissions: dict[str, tuple[str, ...]]


CONTOSO = Tenant(id=sandbox_uuid("tenant:contoso"), name="Contoso", domain="contoso.example")
FABRIKAM = Tenant(id=sandbox_uuid("tenant:fabrikam"), name="Fabrikam", domain="fabrikam.example")
PUBLISHER = Tenant(id=sandbox_uuid("tenant:publisher"), name="Connector Publisher", domain="publisher.example")
TENANTS: tuple[Tenant, ...] = (CONTOSO, FABRIKAM, PUBLISHER)

ALICE = User(
    upn="alice@contoso.example",
    password="Alice-Sandbox-1!",
    given_name="Alice",
    surname="Anders",
    tenant_id=CONTOSO.id,
    note="Two enabled environments (connector solution in the first only) and one disabled; has the connector role",
)
CAROL = User(
    upn="carol@contoso.example",
    password="Carol-Sandbox-1!",
    given_name="Carol",
    surname="Chen",
    tenant_id=CONTOSO.id,
    note="Solution installed, but without the connector role (missing privileges)",
)
DAVE = User(
    upn="dave@fabrikam.example",
    password="Dave-Sandbox-1!",
    given_name="Dave",
    surname="Dunn",
    tenant_id=FABRIKAM.id,
    note="No Dynamics 365 environments at all",
)
USERS: tuple[User, ...] = (ALICE, CAROL, DAVE)

DYNAMICS_CRM = ResourceApp(
    app_id="00000007-0000-0000-c000-000000000000",
    name="Dynamics CRM",
    scopes=("user_impersonation",),
    descriptions={"user_impersonation": "Access Dynamics 365 as organization users"},
)
MICROSOFT_GRAPH = ResourceApp(
    app_id="00000003-0000-0000-c000-000000000000",
    name="Microsoft Graph",
    scopes=("User.Read",),
    descriptions={"User.Read": "Sign you in and read your profile"},
    short_scope_names=True,
    accepts_v1_tokens=False,
)
GRAPH_AUDIENCE = "https://graph.microsoft.com"

CLIENT_ID = sandbox_uuid("app:xero-dynamics-connector")
CLIENT_SECRET = "sandbox-dynamics-secret"
CONNECTOR_APP = AppRegistration(
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    display_name="Xero Dynamics Connector (sandbox)",
    publisher_tenant_id=PUBLISHER.id,
    required_permissions={
        DYNAMICS_CRM.app_id: ("user_impersonation",),
        MICROSOFT_GRAPH.app_id: ("User.Read",),
    },
)

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
OIDC_DESCRIPTIONS = {
    "offline_access": "Maintain access to data you have given it access to",
    "profile": "View your basic profile",
    "openid": "Sign you in",
    "email": "View your email address",
}


def user_by_upn(upn: str) -> User | None:
    wanted = upn.strip().lower()
    return next((user for user in USERS if user.upn == wanted), None)


def user_by_oid(oid: str) -> User | None:
    return next((user for user in USERS if user.oid == oid), None)


def tenant_by_id(tenant_id: str) -> Tenant | None:
    return next((tenant for tenant in TENANTS if tenant.id == tenant_id), None)


def resolve_tenant(segment: str) -> Tenant | None:
    """A tenant path segment given as a GUID or a verified domain."""
    wanted = segment.lower()
    return next((t for t in TENANTS if wanted in (t.id, t.domain)), None)
