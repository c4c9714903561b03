"""The Microsoft Entra ID sandbox (see README.md): sign-in pages, tokens MSAL accepts, seeded directory."""

from sandbox.entra.directory import (
    ALICE,
    CAROL,
    CLIENT_ID,
    CLIENT_SECRET,
    CONNECTOR_APP,
    CONTOSO,
    DAVE,
    DYNAMICS_CRM,
    FABRIKAM,
    TENANTS,
    USERS,
    ResourceApp,
    Tenant,
    User,
    sandbox_uuid,
    user_by_oid,
    user_by_upn,
)
from sandbox.entra.server import EntraRequest, EntraSandbox
from sandbox.entra.tokens import Claims, TokenCheck

__all__ = [
    "ALICE",
    "CAROL",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CONNECTOR_APP",
    "CONTOSO",
    "DAVE",
    "DYNAMICS_CRM",
    "FABRIKAM",
    "TENANTS",
    "USERS",
    "Claims",
    "EntraRequest",
    "EntraSandbox",
    "ResourceApp",
    "Tenant",
    "TokenCheck",
    "User",
    "sandbox_uuid",
    "user_by_oid",
    "user_by_upn",
]
