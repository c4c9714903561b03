"""State of one Dataverse environment: its tables and rows, members, roles, privileges, transactions.

Rows are dicts keyed by column logical name (lookups hold the target GUID) plus `__version`, the row
version behind `@odata.etag`. Writes go through `TableStore.put/remove`, which journal the previous row
while a transaction is open, so a change set or a bulk action can be rolled back entirely.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.sync.tables import CONNECTOR_USER_ROLE, SOLUTION_FRIENDLY_NAME, SOLUTION_UNIQUE_NAME, Privilege
from sandbox.clock import Clock
from sandbox.dataverse import schema
from sandbox.dataverse.seed import (
    BASIC_USER,
    BASIC_USER_PRIVILEGES,
    CONNECTOR_ROLE,
    SYSTEM_ADMINISTRATOR,
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


class TableStore:
    def __init__(self, spec: schema.TableSpec, env: EnvironmentState) -> None:
        self.spec = spec
        self.rows: dict[str, Row] = {}
        self._env = env
        self._keys: dict[tuple[Any, ...], str] = {}

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
        self.url = ""
        self.state = seed.state
        self.tables: dict[str, TableStore] = {}
        self.members: dict[str, Member] = {}
        self.role_ids: dict[str, str] = {}
        self.solution_installed = False
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
        self._insert_system("businessunits", {"businessunitid": bu, "name": self.seed.unique_name})
        for role in (BASIC_USER, SYSTEM_ADMINISTRATOR):
            self._add_role(role)
        for zone in TIME_ZONES:
            self._insert_system("timezonedefinitions", {
                "timezonedefinitionid": sandbox_uuid(f"timezone:{zone.code}"),
                "timezonecode": zone.code,
                "standardname": zone.standard_name,
                "daylightname": zone.daylight_name,
                "userinterfacename": zone.user_interface_name,
                "bias": zone.bias,
            })
        for name, unique, version in (("Default Solution", "Default", "1.0"), ("Active Solution", "Active", "1.0")):
            self._insert_system("solutions", {
                "solutionid": sandbox_uuid(f"solution:{self.seed.unique_name}:{unique}"),
                "uniquename": unique, "friendlyname": name, "version": version, "ismanaged": False,
                "isvisible": True, "installedon": iso(now), "publisherid": sandbox_uuid("publisher:default"),
            })
        for seed in self.seed.members:
            systemuser_id = sandbox_uuid(f"systemuser:{self.seed.unique_name}:{seed.user.upn}")
            self.members[seed.user.oid] = Member(seed.user, systemuser_id, set(seed.roles) - {CONNECTOR_ROLE})
            self._insert_system("systemusers", {
                "systemuserid": systemuser_id, "fullname": seed.user.display_name, "firstname": seed.user.given_name,
                "lastname": seed.user.surname, "domainname": seed.user.upn, "internalemailaddress": seed.user.upn,
                "azureactivedirectoryobjectid": seed.user.oid, "isdisabled": False, "accessmode": 0,
                "businessunitid": bu,
            })
            self._insert_system("usersettingscollection", {
                "systemuserid": systemuser_id, "timezonecode": seed.timezone_code, "localeid": 5129,
                "uilanguageid": 1033, "businessunitid": bu,
            })
        if self.seed.solution_installed:
            self.install_solution()
            for seed in self.seed.members:
                if CONNECTOR_ROLE in seed.roles:
                    self.members[seed.user.oid].roles.add(CONNECTOR_ROLE)

    def _insert_system(self, entity_set: str, row: Row) -> None:
        row[VERSION] = self.next_version()
        self.tables[entity_set].put(row)

    def _add_role(self, name: str) -> None:
        role_id = sandbox_uuid(f"role:{self.seed.unique_name}:{name}")
        self.role_ids[name] = role_id
        self._insert_system("roles", {
            "roleid": role_id, "name": name, "ismanaged": name == CONNECTOR_ROLE,
            "businessunitid": self.seed.root_business_unit_id,
        })

    def install_solution(self) -> None:
        if self.solution_installed:
            return
        self.solution_installed = True
        for spec in schema.CUSTOM_TABLES:
            self.tables[spec.entity_set] = TableStore(spec, self)
        self._add_role(CONNECTOR_ROLE)
        self._insert_system("solutions", {
            "solutionid": sandbox_uuid(f"solution:{self.seed.unique_name}:{SOLUTION_UNIQUE_NAME}"),
            "uniquename": SOLUTION_UNIQUE_NAME, "friendlyname": SOLUTION_FRIENDLY_NAME, "version": "1.0.0.0",
            "ismanaged": True, "isvisible": True, "installedon": iso(self.clock.now()),
            "publisherid": sandbox_uuid("publisher:xdc"),
        })

    def uninstall_solution(self) -> None:
        """Deleting a managed solution deletes its tables, their data and its security role."""
        if not self.solution_installed:
            return
        self.solution_installed = False
        for spec in schema.CUSTOM_TABLES:
            self.tables.pop(spec.entity_set, None)
        self.tables["roles"].remove(self.role_ids.pop(CONNECTOR_ROLE))
        self.tables["solutions"].remove(sandbox_uuid(f"solution:{self.seed.unique_name}:{SOLUTION_UNIQUE_NAME}"))
        for member in self.members.values():
            member.roles.discard(CONNECTOR_ROLE)

    def member_by_upn(self, upn: str) -> Member:
        user = user_by_upn(upn)
        member = self.members.get(user.oid) if user else None
        if member is None:
            raise KeyError(f"{upn} is not provisioned in {self.seed.unique_name}")
        return member

    def grant_role(self, upn: str, role: str = CONNECTOR_ROLE) -> None:
        if role not in self.role_ids:
            raise KeyError(f"no role {role!r} in {self.seed.unique_name} (is the solution installed?)")
        self.member_by_upn(upn).roles.add(role)

    def revoke_role(self, upn: str, role: str = CONNECTOR_ROLE) -> None:
        self.member_by_upn(upn).roles.discard(role)

    # Privileges --------------------------------------------------------------------------------------------

    def privileges(self, member: Member) -> dict[str, str]:
        """Privilege name -> depth, the union over the member's roles."""
        held: dict[str, str] = {}
        if BASIC_USER in member.roles or SYSTEM_ADMINISTRATOR in member.roles:
            held.update(dict(BASIC_USER_PRIVILEGES))
        if CONNECTOR_ROLE in member.roles and self.solution_installed:
            held.update({name: "Global" for name in CONNECTOR_USER_ROLE.privileges})
        if SYSTEM_ADMINISTRATOR in member.roles and self.solution_installed:
            for spec in schema.CUSTOM_TABLES:
                held.update({f"prv{p.value}{spec.logical_name}": "Global" for p in Privilege})
        return held

    @staticmethod
    def privilege_id(name: str) -> str:
        return sandbox_uuid(f"privilege:{name}")
