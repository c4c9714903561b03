"""The local Xero: identity (login, consent, tokens), /connections and the Accounting API settings endpoints.

See README.md in this folder for what is emulated and the control API.
"""

from sandbox.xero.orgs import stable_id
from sandbox.xero.sandbox import (
    APP_NAME,
    CLIENT_ID,
    CLIENT_SECRET,
    CONTROL_PREFIX,
    DEFAULT_SCOPE,
    PKCE_CLIENT_ID,
    RecordedRequest,
    XeroSandbox,
)
from sandbox.xero.seed import (
    AU_ORG_NAME,
    AU_TENANT_ID,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    DEMO_USERS,
    NOORG_EMAIL,
    NOORG_PASSWORD,
    NZ_ORG_NAME,
    NZ_TENANT_ID,
    SINGLE_EMAIL,
    SINGLE_PASSWORD,
    UK_ORG_NAME,
    UK_TENANT_ID,
    DemoUser,
)

__all__ = [
    "APP_NAME",
    "AU_ORG_NAME",
    "AU_TENANT_ID",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CONTROL_PREFIX",
    "DEFAULT_SCOPE",
    "DEMO_EMAIL",
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "NOORG_EMAIL",
    "NOORG_PASSWORD",
    "NZ_ORG_NAME",
    "NZ_TENANT_ID",
    "PKCE_CLIENT_ID",
    "SINGLE_EMAIL",
    "SINGLE_PASSWORD",
    "UK_ORG_NAME",
    "UK_TENANT_ID",
    "DemoUser",
    "RecordedRequest",
    "XeroSandbox",
    "stable_id",
]
