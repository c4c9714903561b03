"""State of one Dataverse environment: its tables and rows, members, roles, privileges, transactions.

Tables other than the system ones exist only once a solution import created them (importer.py); roles
hold privileges with a depth, as the imported `<Role>` grants them.

Rows are dicts keyed by column logical name (lookups hold the target GUID) plus `__version`, the row
version behind `@odata.etag`. Writes go through `TableStore.put/remove`, which journal the previous row
while a transaction is open, so a change set or a bulk action can be rolled back entirely.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sandbox.clock import Clock
from sandbox.dataverse import schema
from sandbox.dataverse.model import IMPORT_CUSTOMIZATIONS, Depth, Privilege
from sandbox.dataverse.seed import (
    BASIC_USER,
    BASIC_USER_PRIVILEGES,
    SYSTEM_ADMINISTRATOR,
    SYSTEM_CUSTOMIZER,
    TIME_ZONES,
    EnvironmentSeed,
)
from sandbox.dataverse.wire import iso
from sandbox.entra.directory import User, sandbox_uuid, user_by_upn

VERSION = "__version"
Row = dict[str, Any]


@dataclass
class Member:
    user: User
    systemuser_id: str
    roles: set[str]


@dataclass
class InstalledSolution:
    unique_name: str
    solution_id: str
    version: str
    managed: bool
    tables: set[str] = field(default_factory=set)  # logical names it created
    roles: set[str] = field(default_factory=set)
    option_sets: set[str] = field(default_factory=set)


class TableStore:
    def __init__(self, spec: schema.TableSpec, env: EnvironmentState) -> None:
        self.spec = spec
        self.rows: dict[str, Row] = {}
        self._env = env
        self._keys: dict[tuple[Any, ...], str] = {}

    def key_active(self) -> bool:
        return self._env.key_active(self.spec)

    def get(self, row_id: str) -> Row | None:
        return self.rows.get(row_id.lower())

    def key_tuple(self, values: dict[str, Any]) -> tuple[Any, ...] | None:
        """The normalised alternate key of a row (or of URL key values); None if a part is missing."""
        parts: list[Any] = []
        for name in self.spec.alternate_key:
            value = values.get(name)
            if value is None:
                return None
            # Alternate key indexes compare like SQL Server's default collation: case-insensitively.
            parts.append(value.casefold() if isinstance(value, str) else value)
        return tuple(parts)

    def find_key(self, values: dict[str, Any]) -> str | None:
        key = self.key_tuple(values)
        return self._keys.get(key) if key is not None else None

    def put(self, row: Row) -> None:
        row_id = str(row[self.spec.primary_key]).lower()
        self._env.journal_write(self, row_id)
        self._unindex(row_id)
        self.rows[row_id] = row
        key = self.key_tuple(row) if self.spec.alternate_key else None
        if key is not None:
            self._keys[key] = row_id

    def reindex(self) -> None:
        self._keys = {}
        for row_id, row in self.rows.items():
            key = self.key_tuple(row) if self.spec.alternate_key else None
            if key is not None:
                self._keys[key] = row_id

    def remove(self, row_id: str) -> None:
        row_id = row_id.lower()
        self._env.journal_write(self, row_id)
        self._unindex(row_id)
        self.rows.pop(row_id, None)

    def restore(self, row_id: str, previous: Row | None) -> None:
        self._unindex(row_id)
        if previous is None:
            self.rows.pop(row_id, None)
            return
        self.rows[row_id] = previous
        key = self.key_tuple(previous) if self.spec.alternate_key else None
        if key is not None:
            self._keys[key] = row_id

    def _unindex(self, row_id: str) -> None:
        old = self.rows.get(row_id)
        key = self.key_tuple(old) if old is not None and self.spec.alternate_key else None
        if key is not None and self._keys.get(key) == row_id:
            del self._keys[key]


class EnvironmentState:
    def __init__(self, seed: EnvironmentSeed, clock: Clock) -> None:
        self.seed = seed
        self.clock = clock
        self.url = ""  # Global Discovery's Url: the token audience
        self.api_url = ""  # Global Discovery's ApiUrl: where Web API calls go
        self.state = seed.state
        self.tables: dict[str, TableStore] = {}  # by entity set
        self.specs: dict[str, schema.TableSpec] = dict(schema.SYSTEM_SPECS)  # by logical name
        self.members: dict[str, Member] = {}
        self.role_ids: dict[str, str] = {}
        self.roles: dict[str, dict[str, Depth]] = {}  # imported roles: privilege name -> depth
        self.option_sets: dict[str, tuple[int, ...]] = {}
        self.solutions: dict[str, InstalledSolution] = {}
        self.key_ready_at: dict[str, float] = {}  # table logical name -> clock time its key index is Active
        self.jobs: list[Any] = []  # solution imports still running (importer.PendingImport)
        self.import_seconds = 0.0  # how long an ImportSolutionAsync runs, on the sandbox clock
        self.key_delay = 0.0  # how long a new alternate key's index takes to become Active after its import
        self._version = 1_000_000
        self._journal: list[tuple[TableStore, str, Row | None]] | None = None
        self._build()

    # Versions and transactions -------------------------------------------------------------------------

    def next_version(self) -> int:
        self._version += 1
        return self._version

    def journal_write(self, store: TableStore, row_id: str) -> None:
        if self._journal is not None:
            previous = store.rows.get(row_id)
            self._journal.append((store, row_id, dict(previous) if previous is not None else None))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside succeed together or are undone together (nesting joins the outer one)."""
        outermost = self._journal is None
        if outermost:
            self._journal = []
        assert self._journal is not None
        start = len(self._journal)
        try:
            yield
        except BaseException:
            for store, row_id, previous in reversed(self._journal[start:]):
                store.restore(row_id, previous)
            del self._journal[start:]
            raise
        finally:
            if outermost:
                self._journal = None

    # Set-up and control ---------------------------------------------------------------------------------

    def _build(self) -> None:
        now = self.clock.now()
        for spec in schema.SYSTEM_TABLES:
            self.tables[spec.entity_set] = TableStore(spec, self)
        bu = self.seed.root_business_unit_id
        self.insert_system("businessunits", {"businessunitid": bu, "name": self.seed.unique_name})
        for role in (BASIC_USER, SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER):
            self.add_role(role, sandbox_uuid(f"role:{self.seed.unique_name}:{role}"), managed=False)
        for zone in TIME_ZONES:
            self.insert_system("timezonedefinitions", {
                "timezonedefinitionid": sandbox_uuid(f"timezone:{zone.code}"),
                "timezonecode": zone.code,
                "standardname": zone.standard_name,
                "daylightname": zone.daylight_name,
                "userinterfacename": zone.user_interface_name,
                "bias": zone.bias,
            })
        for name, unique, version in (("Default Solution", "Default", "1.0"), ("Active Solution", "Active", "1.0")):
            self.insert_system("solutions", {
                "solutionid": sandbox_uuid(f"solution:{self.seed.unique_name}:{unique}"),
                "uniquename": unique, "friendlyname": name, "version": version, "ismanaged": False,
                "isvisible": True, "installedon": iso(now), "publisherid": sandbox_uuid("publisher:default"),
            })
        for seed in self.seed.members:
            systemuser_id = sandbox_uuid(f"systemuser:{self.seed.unique_name}:{seed.user.upn}")
            self.members[seed.user.oid] = Member(seed.user, systemuser_id, {r for r in seed.roles if r in self.role_ids})
            self.insert_system("systemusers", {
                "systemuserid": systemuser_id, "fullname": seed.user.display_name, "firstname": seed.user.given_name,
                "lastname": seed.user.surname, "domainname": seed.user.upn, "internalemailaddress": seed.user.upn,
                "azureactivedirectoryobjectid": seed.user.oid, "isdisabled": False, "accessmode": 0,
                "businessunitid": bu,
            })
            self.insert_system("usersettingscollection", {
                "systemuserid": systemuser_id, "timezonecode": seed.timezone_code, "localeid": 5129,
                "uilanguageid": 1033, "businessunitid": bu,
            })

    def grant_seeded_roles(self) -> None:
        """Seeded members get the seeded roles that exist now (after the seed's solution import)."""
        for seed in self.seed.members:
            self.members[seed.user.oid].roles.update(r for r in seed.roles if r in self.role_ids)

    def insert_system(self, entity_set: str, row: Row) -> None:
        row[VERSION] = self.next_version()
        self.tables[entity_set].put(row)

    def add_role(self, name: str, role_id: str, *, managed: bool) -> None:
        self.role_ids[name] = role_id
        self.insert_system("roles", {
            "roleid": role_id, "name": name, "ismanaged": managed, "businessunitid": self.seed.root_business_unit_id,
        })

    @property
    def solution_installed(self) -> bool:
        """Whether any solution of a publisher other than the system's is installed."""
        return bool(self.solutions)

    def custom_specs(self) -> list[schema.TableSpec]:
        return [spec for spec in self.specs.values() if spec.custom]

    def key_active(self, spec: schema.TableSpec) -> bool:
        """An alternate key is usable once its index is built (EntityKeyIndexStatus Active)."""
        return self.clock.time() >= self.key_ready_at.get(spec.logical_name, 0.0)

    def member_by_upn(self, upn: str) -> Member:
        user = user_by_upn(upn)
        member = self.members.get(user.oid) if user else None
        if member is None:
            raise KeyError(f"{upn} is not provisioned in {self.seed.unique_name}")
        return member

    def grant_role(self, upn: str, role: str) -> None:
        if role not in self.role_ids:
            raise KeyError(f"no role {role!r} in {self.seed.unique_name} (is the solution installed?)")
        self.member_by_upn(upn).roles.add(role)

    def revoke_role(self, upn: str, role: str) -> None:
        self.member_by_upn(upn).roles.discard(role)

    # Privileges --------------------------------------------------------------------------------------------

    def privileges(self, member: Member) -> dict[str, Depth]:
        """Privilege name -> depth, the deepest grant over the member's roles."""
        held: dict[str, Depth] = {}

        def grant(name: str, depth: Depth) -> None:
            if name not in held or held[name].rank < depth.rank:
                held[name] = depth

        if member.roles & {BASIC_USER, SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER}:
            for name, depth in BASIC_USER_PRIVILEGES:
                grant(name, Depth(depth))
        for role in member.roles:
            for name, depth in self.roles.get(role, {}).items():
                grant(name, depth)
        if member.roles & {SYSTEM_ADMINISTRATOR, SYSTEM_CUSTOMIZER}:
            # Both hold Import Customizations and full access to custom tables
            # (https://learn.microsoft.com/power-platform/admin/database-security#predefined-security-roles).
            # The ImportSolution message's own privileges ("ImportSolution message privileges",
            # https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/gg327891(v=crm.8)).
            for name in (IMPORT_CUSTOMIZATIONS, "prvCreateSolution", "prvReadSolution", "prvWriteSolution",
                         "prvCreatePublisher", "prvCreateCustomization", "prvReadCustomization",
                         "prvWriteCustomization", "prvReadRole"):
                grant(name, Depth.GLOBAL)
            for spec in self.custom_specs():
                for privilege in Privilege:
                    grant(f"prv{privilege.value}{spec.schema}", Depth.GLOBAL)
        return held

    @staticmethod
    def privilege_id(name: str) -> str:
        return sandbox_uuid(f"privilege:{name}")
