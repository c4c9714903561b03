"""The seeded Dataverse world: environments per tenant, who is provisioned where, roles, time zones.

    Contoso  contosoprod     enabled   solution installed   alice (connector role), carol (Basic User only)
             contosotest     enabled   solution missing     alice (System Administrator)
             contosoarchive  disabled  solution installed   alice
    Fabrikam (none)                                         dave is provisioned nowhere
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.entra.directory import ALICE, CAROL, CONTOSO, User, sandbox_uuid

BASIC_USER = "Basic User"
SYSTEM_ADMINISTRATOR = "System Administrator"
SYSTEM_CUSTOMIZER = "System Customizer"
# The role our solution ships, by the name a Dynamics admin would assign: seeded members hold it once the
# solution import has created it (the sandbox learns its privileges from the package, never from `bot`).
CONNECTOR_ROLE = "Xero Connector User"
VERSION = "9.2.25013.185"

# Privileges Basic User holds on system tables (a small, real subset), with their depth.
BASIC_USER_PRIVILEGES: tuple[tuple[str, str], ...] = (
    ("prvReadUser", "Global"),
    ("prvReadBusinessUnit", "Global"),
    ("prvReadRole", "Global"),
    ("prvReadOrganization", "Global"),
    ("prvReadSolution", "Global"),
    ("prvReadUserSettings", "Basic"),
    ("prvWriteUserSettings", "Basic"),
    ("prvReadAccount", "Basic"),
    ("prvReadContact", "Basic"),
)


@dataclass(frozen=True)
class MemberSeed:
    user: User
    roles: tuple[str, ...]
    timezone_code: int


@dataclass(frozen=True)
class EnvironmentSeed:
    unique_name: str
    url_name: str
    friendly_name: str
    tenant_id: str
    state: int  # 0 enabled, 1 disabled (as Global Discovery reports it)
    solution_installed: bool  # the solution zip given to the sandbox is imported when the environment is built
    members: tuple[MemberSeed, ...]
    region: str = "Oceania"

    @property
    def organization_id(self) -> str:
        return sandbox_uuid(f"organization:{self.unique_name}")

    @property
    def environment_id(self) -> str:
        return sandbox_uuid(f"environment:{self.unique_name}")

    @property
    def root_business_unit_id(self) -> str:
        return sandbox_uuid(f"businessunit:{self.unique_name}")


ENVIRONMENTS: tuple[EnvironmentSeed, ...] = (
    EnvironmentSeed(
        unique_name="contosoprod",
        url_name="contoso-prod",
        friendly_name="Contoso Production",
        tenant_id=CONTOSO.id,
        state=0,
        solution_installed=True,
        members=(
            MemberSeed(ALICE, (BASIC_USER, CONNECTOR_ROLE), 290),
            MemberSeed(CAROL, (BASIC_USER,), 85),
        ),
    ),
    EnvironmentSeed(
        unique_name="contosotest",
        url_name="contoso-test",
        friendly_name="Contoso Test",
        tenant_id=CONTOSO.id,
        state=0,
        solution_installed=False,
        members=(MemberSeed(ALICE, (BASIC_USER, SYSTEM_ADMINISTRATOR), 290),),
    ),
    EnvironmentSeed(
        unique_name="contosoarchive",
        url_name="contoso-archive",
        friendly_name="Contoso Archive",
        tenant_id=CONTOSO.id,
        state=1,
        solution_installed=True,
        members=(MemberSeed(ALICE, (BASIC_USER, CONNECTOR_ROLE), 290),),
    ),
)


@dataclass(frozen=True)
class TimeZone:
    code: int
    standard_name: str
    daylight_name: str
    user_interface_name: str
    bias: int  # minutes west of UTC, as Windows and Dataverse store it


TIME_ZONES: tuple[TimeZone, ...] = (
    TimeZone(4, "Pacific Standard Time", "Pacific Daylight Time", "(GMT-08:00) Pacific Time (US & Canada)", 480),
    TimeZone(20, "Central Standard Time", "Central Daylight Time", "(GMT-06:00) Central Time (US & Canada)", 360),
    TimeZone(35, "Eastern Standard Time", "Eastern Daylight Time", "(GMT-05:00) Eastern Time (US & Canada)", 300),
    TimeZone(85, "GMT Standard Time", "GMT Daylight Time", "(GMT+00:00) Dublin, Edinburgh, Lisbon, London", 0),
    TimeZone(92, "UTC", "UTC", "(GMT) Coordinated Universal Time", 0),
    TimeZone(105, "Romance Standard Time", "Romance Daylight Time", "(GMT+01:00) Brussels, Copenhagen, Madrid, Paris", -60),
    TimeZone(
        110, "W. Europe Standard Time", "W. Europe Daylight Time",
        "(GMT+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", -60,
    ),
    TimeZone(215, "Singapore Standard Time", "Malay Peninsula Daylight Time", "(GMT+08:00) Kuala Lumpur, Singapore", -480),
    TimeZone(235, "Tokyo Standard Time", "Tokyo Daylight Time", "(GMT+09:00) Osaka, Sapporo, Tokyo", -540),
    TimeZone(255, "AUS Eastern Standard Time", "AUS Eastern Daylight Time", "(GMT+10:00) Canberra, Melbourne, Sydney", -600),
    TimeZone(290, "New Zealand Standard Time", "New Zealand Daylight Time", "(GMT+12:00) Auckland, Wellington", -720),
)


def environment_seed(unique_name: str) -> EnvironmentSeed | None:
    return next((e for e in ENVIRONMENTS if e.unique_name == unique_name), None)
