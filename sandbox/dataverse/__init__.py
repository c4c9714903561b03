"""The Dataverse sandbox (see README.md): Global Discovery and a Web API per seeded environment."""

from sandbox.dataverse.limits import LimitSettings
from sandbox.dataverse.seed import (
    BASIC_USER,
    CONNECTOR_ROLE,
    ENVIRONMENTS,
    SYSTEM_ADMINISTRATOR,
    EnvironmentSeed,
)
from sandbox.dataverse.server import DataverseRequest, DataverseSandbox

__all__ = [
    "BASIC_USER",
    "CONNECTOR_ROLE",
    "ENVIRONMENTS",
    "SYSTEM_ADMINISTRATOR",
    "DataverseRequest",
    "DataverseSandbox",
    "EnvironmentSeed",
    "LimitSettings",
]
