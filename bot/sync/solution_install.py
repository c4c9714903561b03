"""Our solution in a Dynamics 365 environment: which version is there, and installing or upgrading it.

- `solution_status` reads the `solutions` row of our unique name and compares its version with the one
  this build ships. An older version keeps working as long as every table and column the sync writes
  existed in it (`compatible`); the package records when each one was introduced (bot.sync.tables).
- `SolutionImport` imports the zip with the Web API's asynchronous import, `ImportSolutionAsync`
  (DP:webapi/reference/importsolutionasync), which answers `{AsyncOperationId, ImportJobKey}`
  (DP:webapi/reference/importsolutionasyncresponse), and follows the system job in `asyncoperations`
  (DP:reference/entities/asyncoperation: statecode 0 Ready, 1 Suspended, 2 Locked, 3 Completed;
  statuscode 30 Succeeded, 31 Failed, 32 Canceled) until it completes.
- Importing needs customization privileges (tables.IMPORT_PRIVILEGES); `missing_import_privileges`
  says which the user lacks, so the card offers "Install it for me" only to someone who may.

The zip itself comes from the caller (bot.solution builds it): the sync core does not build packages.
"""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum

from bot.errors import Problem, ProviderError
from bot.sync.dataverse import PROVIDER, DataverseClient
from bot.sync.dataverse_batch import guid, odata_string
from bot.sync.tables import ALL_TABLES, FIRST_VERSION, IMPORT_PRIVILEGES, SOLUTION_UNIQUE_NAME

log = logging.getLogger(__name__)


def parse_version(text: str) -> tuple[int, ...]:
    """`1.2.0.0` -> (1, 2, 0, 0); missing parts count as 0, junk as the oldest version."""
    parts: list[int] = []
    for piece in (text or "").strip().split(".")[:4]:
        parts.append(int(piece) if piece.isdigit() else 0)
    while len(parts) < 4:
        parts.append(0)
    return tuple(parts)


def needed_version() -> str:
    """The oldest solution version that has every table and column the sync writes."""
    versions = [FIRST_VERSION]
    for table in ALL_TABLES:
        versions.append(table.introduced)
        versions += [column.introduced for column in table.columns]
    return max(versions, key=parse_version)


def compatible(installed: str) -> bool:
    return parse_version(installed) >= parse_version(needed_version())


class SolutionState(StrEnum):
    MISSING = "missing"
    OLDER = "older"  # an upgrade is available
    CURRENT = "current"
    NEWER = "newer"  # installed by a newer build of the bot: never downgraded


@dataclass(frozen=True)
class SolutionStatus:
    state: SolutionState
    shipped: str
    installed: str = ""
    managed: bool = True

    @property
    def usable(self) -> bool:
        """Whether the sync can run on what is installed."""
        return self.state is not SolutionState.MISSING and compatible(self.installed)


async def solution_status(dv: DataverseClient, shipped: str) -> SolutionStatus:
    body = await dv.get_json(
        "solutions",
        {
            "$select": "solutionid,uniquename,version,ismanaged",
            "$filter": f"uniquename eq {odata_string(SOLUTION_UNIQUE_NAME)}",
        },
    )
    rows = [r for r in body.get("value", []) if isinstance(r, dict)]
    row = next(
        (r for r in rows if str(r.get("uniquename", "")).lower() == SOLUTION_UNIQUE_NAME.lower()), None
    )
    if row is None:
        return SolutionStatus(SolutionState.MISSING, shipped)
    installed = str(row.get("version") or "")
    managed = bool(row.get("ismanaged", True))
    have, ours = parse_version(installed), parse_version(shipped)
    state = (
        SolutionState.CURRENT if have == ours else SolutionState.OLDER if have < ours else SolutionState.NEWER
    )
    return SolutionStatus(state, shipped, installed, managed)


class KeysState(StrEnum):
    READY = "ready"  # every alternate key's index is Active
    BUILDING = "building"  # Pending or InProgress: Dataverse builds them with a system job after an import
    FAILED = "failed"  # an index could not be built: an admin must reactivate the key


async def keys_state(dv: DataverseClient) -> tuple[KeysState, tuple[str, ...]]:
    """Whether our tables' alternate keys can be used yet, and the tables whose keys are not.

    A new alternate key is usable only once its index is Active (EntityKeyMetadata.EntityKeyIndexStatus:
    Pending, InProgress, Active, Failed; DP:define-alternate-keys-entity). Every write of ours is an upsert
    by alternate key, so the setup waits for them after an import rather than failing its first Save."""
    building: list[str] = []
    failed: list[str] = []
    for table in ALL_TABLES:
        if not table.alternate_key:
            continue
        body = await dv.get_json(
            f"EntityDefinitions(LogicalName={odata_string(table.logical_name)})/Keys",
            {"$select": "LogicalName,EntityKeyIndexStatus"},
        )
        statuses = [
            str(k.get("EntityKeyIndexStatus", "")) for k in body.get("value", []) if isinstance(k, dict)
        ]
        if any(status == "Failed" for status in statuses):
            failed.append(table.display_name)
        elif not statuses or any(status != "Active" for status in statuses):
            building.append(table.display_name)
    if failed:
        return KeysState.FAILED, tuple(failed)
    return (KeysState.BUILDING, tuple(building)) if building else (KeysState.READY, ())


async def missing_import_privileges(dv: DataverseClient, user_id: str) -> list[str]:
    held = await dv.held_privileges(user_id)
    return [name for name in IMPORT_PRIVILEGES if name.lower() not in held]


class ImportPhase(StrEnum):
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ImportProgress:
    phase: ImportPhase
    percent: float | None = None
    # Dataverse's own reason when the import failed (friendlymessage, else message); log-scrubbed text.
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.phase in (ImportPhase.SUCCEEDED, ImportPhase.FAILED)


@dataclass(frozen=True)
class ImportHandle:
    async_operation_id: str
    import_job_id: str


_SUCCEEDED, _FAILED, _CANCELED = 30, 31, 32
_COMPLETED = 3
_IN_PROGRESS = 20


class SolutionImport:
    """One asynchronous import of our zip into one environment."""

    def __init__(self, dv: DataverseClient) -> None:
        self._dv = dv

    async def start(self, zip_bytes: bytes) -> ImportHandle:
        """Queue the import. The import job's id is ours to choose (ImportJobId), so its progress can be
        read without searching for it."""
        job_id = str(uuid.uuid4())
        body = await self._dv.post_json(
            "ImportSolutionAsync",
            {
                "OverwriteUnmanagedCustomizations": False,
                "PublishWorkflows": True,
                "CustomizationFile": base64.b64encode(zip_bytes).decode("ascii"),
                "ImportJobId": job_id,
            },
        )
        operation = str(body.get("AsyncOperationId") or "")
        if not operation:
            raise ProviderError(Problem.IMPORT_NOT_STARTED, provider=PROVIDER, where="ImportSolutionAsync")
        return ImportHandle(async_operation_id=guid(operation), import_job_id=job_id)

    async def progress(self, handle: ImportHandle) -> ImportProgress:
        job = await self._dv.get_json(
            f"asyncoperations({guid(handle.async_operation_id)})",
            {"$select": "statecode,statuscode,message,friendlymessage"},
        )
        state, status = job.get("statecode"), job.get("statuscode")
        if state == _COMPLETED or status in (_SUCCEEDED, _FAILED, _CANCELED):
            if status == _SUCCEEDED:
                return ImportProgress(ImportPhase.SUCCEEDED, 100.0)
            reason = str(job.get("friendlymessage") or job.get("message") or "").strip()
            return ImportProgress(ImportPhase.FAILED, reason=reason[:500])  # "": stopped, no reason given
        percent = await self._percent(handle)
        return ImportProgress(ImportPhase.RUNNING if status == _IN_PROGRESS else ImportPhase.WAITING, percent)

    async def _percent(self, handle: ImportHandle) -> float | None:
        """The import job's progress (0-100), when the service shows it yet."""
        try:
            job = await self._dv.get_json(
                f"importjobs({guid(handle.import_job_id)})", {"$select": "progress"}
            )
        except ProviderError as exc:  # the job row appears only once the import starts working
            log.debug("import job %s not readable yet: %s", handle.import_job_id, exc.status)
            return None
        value = job.get("progress")
        return float(value) if isinstance(value, int | float) else None
