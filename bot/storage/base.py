"""What the product keeps, as async protocols with narrow, intent-named methods.

Two backends implement all of them: SQLite (`bot.storage.sqlite`, embedded default) and Redis
(`bot.storage.redis`, production, several processes; one server or a Redis Cluster). One contract
suite (`tests/contract/`) runs against SQLite, a standalone Redis and a three-node Redis Cluster.
Values are JSON, never pickle. Token sets arrive here already encrypted (`bot.crypto`): the store
never sees a plaintext token.

Nothing here holds financial data: connections hold configuration and state, run records hold counts,
times and error summaries, fingerprints hold hashes keyed by Xero's ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

# The run's enums live beside it; imported from here as well (`X as X`: re-exported on purpose).
from bot.storage.run_kinds import AttentionReason as AttentionReason
from bot.storage.run_kinds import FailureKind as FailureKind
from bot.storage.run_kinds import KnownAttention, KnownFailureKind, KnownRefusal
from bot.storage.run_kinds import Provider as Provider
from bot.storage.run_kinds import RecordRefusal as RecordRefusal
from bot.storage.run_kinds import RunStage as RunStage
from bot.storage.run_kinds import RunTrigger as RunTrigger


def utcnow() -> datetime:
    return datetime.now(UTC)


class ConnectionStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    NEEDS_RECONNECTION = "needs_reconnection"
    DISCONNECTED = "disconnected"


class NotifyMode(StrEnum):
    EVERY_RUN = "every_run"
    CHANGES_OR_FAILURES = "changes_or_failures"
    FAILURES_ONLY = "failures_only"


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Connection(Record):
    """One Xero organisation connected to one Dynamics environment, set up in one conversation."""

    id: str
    name: str
    # Where and by whom it was set up: it is visible and operable only there.
    teams_tenant_id: str
    conversation_key: str  # see ConversationRef.key
    created_by_aad_id: str
    created_by_name: str = ""
    thread_activity_id: str = ""  # in a channel, the connection's own thread
    # Xero side.
    xero_tenant_id: str
    xero_connection_id: str = ""  # the /connections id, for DELETE /connections/{id}
    xero_org_name: str = ""
    xero_timezone: str = ""  # IANA, converted from Xero's Windows-style name
    # Dynamics side.
    dataverse_env_id: str = ""
    dataverse_env_name: str = ""
    dataverse_env_url: str = ""  # token audience
    dataverse_api_url: str = ""  # Web API base
    dataverse_connector_row_id: str = ""
    dataverse_settings_row_id: str = ""
    dataverse_user_timezone: str = ""
    # Configuration.
    plan: str = "trial"
    timezone: str = "UTC"
    notify_mode: NotifyMode = NotifyMode.EVERY_RUN
    status: ConnectionStatus = ConnectionStatus.ACTIVE
    status_reason: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    # Sync state (no financial data).
    last_run_at: datetime | None = None
    last_outcome: str = ""
    last_success_at: datetime | None = None
    next_run_at: datetime | None = None
    consecutive_failures: int = 0
    accounts_modified_since: datetime | None = None
    last_full_pass_at: datetime | None = None
    xero_day_remaining: int | None = None
    on_demand_runs_today: int = 0
    on_demand_day: str = ""
    # What syncs (the settings card's switches); a switched-off entity is neither read nor written.
    sync_accounts: bool = True
    sync_tax_rates: bool = True
    sync_branding_themes: bool = True
    sync_tracking_categories: bool = True
    # The default connection of its Dynamics 365 environment; None: as decided at setup (the first one).
    is_default: bool | None = None
    # Optimistic concurrency: bumped by every save.
    version: int = 0


class TokenKind(StrEnum):
    XERO = "xero"
    DYNAMICS = "dynamics"  # an MSAL serialized token cache


class RunOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # finished, some records failed
    FAILED = "failed"
    SKIPPED = "skipped"


class EntityCounts(Record):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    failed: int = 0

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deactivated


class RecordFailure(Record):
    entity: str
    key: str  # Xero's id of the record (not a financial value)
    reason: str  # the scrubbed detail; records stored before `refusal` existed hold the whole sentence
    refusal: KnownRefusal = None


class RunRecord(Record):
    id: str
    connection_id: str
    trigger: RunTrigger
    started_at: datetime
    finished_at: datetime | None = None
    outcome: RunOutcome = RunOutcome.RUNNING
    counts: dict[str, EntityCounts] = Field(default_factory=dict)
    failures: list[RecordFailure] = Field(default_factory=list)
    error: str = ""
    xero_calls: int = 0
    dataverse_calls: int = 0
    xero_day_remaining: int | None = None
    full_pass: bool = False
    skipped: list[str] = Field(default_factory=list)  # entities switched off for this run
    # Set by the engine when the run failed: whose failure it was (None: ours, or no provider's) and
    # what it asks a person to do (None: nothing beyond reading the error). Records stored before
    # these fields existed load with None.
    failed_provider: Provider | None = None
    attention: KnownAttention = None
    # What stopped the run (None: it did not fail, or it was stored before these fields: `error` then
    # holds its words), the provider's scrubbed message and its status or code. Words: cards.failure_words.
    failure_kind: KnownFailureKind = None
    failure_detail: str = ""
    failure_code: str = ""

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class ConversationRef(Record):
    """A serialized Bot Framework conversation reference (as JSON) and what we know of the conversation."""

    key: str  # f"{channel_id}:{conversation_id}" with any ;messageid= suffix removed
    teams_tenant_id: str = ""
    conversation_type: str = ""  # personal, groupChat, channel
    reference: dict[str, Any]
    removed: bool = False  # the bot got 403 (no longer in the conversation)
    updated_at: datetime = Field(default_factory=utcnow)


@dataclass(frozen=True)
class Claim:
    """A due run claimed by a scheduler: held until `lease_until` unless extended or released."""

    connection_id: str
    due_at: datetime
    owner: str
    lease_until: datetime
    on_demand: bool = False


class RunEventKind(StrEnum):
    """What a run event tells (see `RunEventFeed`)."""

    STARTED = "started"  # the run record was first saved, RUNNING
    FINISHED = "finished"  # the run record was saved with its final outcome


@dataclass(frozen=True)
class RunEvent:
    """One entry of the run-event feed. `cursor` is opaque: pass it back to `read_run_events`."""

    cursor: str
    connection_id: str
    run_id: str
    kind: RunEventKind
    at: datetime  # when it was appended (the store's clock)


@dataclass(frozen=True)
class Document:
    """A JSON document with an opaque version tag (for botbuilder state and similar)."""

    value: dict[str, Any]
    etag: str


@runtime_checkable
class ConnectionStore(Protocol):
    async def create_connection(self, connection: Connection) -> Connection:
        """Insert a new connection (version 1). Raises ConcurrencyError if the id exists."""

    async def get_connection(self, connection_id: str) -> Connection | None: ...

    async def save_connection(self, connection: Connection) -> Connection:
        """Write if `connection.version` is still current; returns it with version+1.

        Raises ConcurrencyError otherwise (load, re-apply, save again)."""

    async def list_connections(self, conversation_key: str | None = None) -> list[Connection]:
        """All connections, or those set up in one conversation, oldest first."""

    async def list_tenant_connections(self, teams_tenant_id: str) -> list[Connection]:
        """The connections of one Teams tenant (`Connection.teams_tenant_id`), in the order of
        `list_connections` (oldest first), without reading the other tenants' connections."""

    async def delete_connection(self, connection_id: str) -> None: ...


@runtime_checkable
class TokenStore(Protocol):
    """Encrypted token blobs: bytes in, bytes out (the caller encrypts and decrypts)."""

    async def put_tokens(self, connection_id: str, kind: TokenKind, blob: bytes) -> None: ...

    async def get_tokens(self, connection_id: str, kind: TokenKind) -> bytes | None: ...

    async def delete_tokens(self, connection_id: str, kind: TokenKind | None = None) -> None:
        """Forget one kind, or every token of the connection."""

    async def all_token_blobs(self) -> list[tuple[str, TokenKind, bytes]]:
        """Every stored blob (for key rotation)."""


@runtime_checkable
class OAuthStateStore(Protocol):
    async def put_state(self, state: str, payload: dict[str, Any], ttl_seconds: float) -> None: ...

    async def take_state(self, state: str) -> dict[str, Any] | None:
        """Atomically read and delete: a second take of the same state returns None. Expired: None."""

    async def peek_state(self, state: str) -> dict[str, Any] | None:
        """Read without consuming (to show an error page that names the flow); None if gone."""


@runtime_checkable
class ConversationStore(Protocol):
    async def save_reference(self, ref: ConversationRef) -> None: ...

    async def get_reference(self, key: str) -> ConversationRef | None: ...

    async def mark_removed(self, key: str) -> None: ...


@runtime_checkable
class RunStore(Protocol):
    async def save_run(self, run: RunRecord) -> None:
        """Insert or replace by run id."""

    async def list_runs(self, connection_id: str, limit: int = 10) -> list[RunRecord]:
        """Newest first. Keeps at most the last 200 runs per connection."""

    async def get_run(self, run_id: str) -> RunRecord | None: ...


@runtime_checkable
class FingerprintStore(Protocol):
    """Hashes of what was last written to Dynamics, keyed by entity and Xero's id. Never values."""

    async def get_fingerprints(self, connection_id: str, entity: str) -> dict[str, str]: ...

    async def put_fingerprints(self, connection_id: str, entity: str, fingerprints: dict[str, str]) -> None:
        """Replace the whole map for this entity."""

    async def delete_fingerprints(self, connection_id: str) -> None: ...


@runtime_checkable
class ScheduleStore(Protocol):
    """The due set with leases. A claimed entry is invisible to other claimers until its lease ends."""

    async def schedule(self, connection_id: str, due_at: datetime, *, on_demand: bool = False) -> None:
        """Set (or move) the next due time. `on_demand` jumps the queue and is kept if an unleased
        entry already exists with an earlier time. Scheduling a connection whose run is leased
        records the new due time for after the lease is released."""

    async def unschedule(self, connection_id: str) -> None: ...

    async def claim_due(self, now: datetime, owner: str, lease_seconds: float, limit: int) -> list[Claim]:
        """Claim up to `limit` entries due at `now` (on-demand first, then by due time), each exactly
        once across processes; entries whose lease expired are claimable again."""

    async def extend_lease(self, connection_id: str, owner: str, lease_seconds: float) -> bool:
        """False if the lease is no longer ours."""

    async def release(self, connection_id: str, owner: str, next_due: datetime | None) -> bool:
        """End our lease and set the next due time (None: leave unscheduled). False if not ours."""

    async def get_due(self, connection_id: str) -> datetime | None: ...

    async def lease_holder(self, connection_id: str) -> str | None: ...


@runtime_checkable
class LockStore(Protocol):
    """Named, expiring locks that hold across processes (token refresh per connection)."""

    async def acquire_lock(self, name: str, owner: str, ttl_seconds: float) -> bool: ...

    async def release_lock(self, name: str, owner: str) -> None: ...


@runtime_checkable
class DocumentStore(Protocol):
    """JSON documents with eTag concurrency, behind botbuilder's Storage (see bot.teams.state)."""

    async def read_documents(self, keys: list[str]) -> dict[str, Document]: ...

    async def write_document(self, key: str, value: dict[str, Any], expected_etag: str | None) -> str:
        """Write and return the new eTag. `expected_etag` None or "*" writes unconditionally;
        otherwise a mismatch raises ConcurrencyError."""

    async def delete_documents(self, keys: list[str]) -> None: ...


@runtime_checkable
class Counters(Protocol):
    async def incr_counter(self, name: str, ttl_seconds: float) -> int:
        """Increment a counter that expires `ttl_seconds` after its creation; return the new value."""


@runtime_checkable
class RunEventFeed(Protocol):
    """A capped, append-only feed of run events, shared by every process: whoever executes a run
    appends, a watcher reads on from its cursor instead of rescanning every connection's runs.

    Oldest first; only the newest `RUN_EVENTS_KEPT` (about) are kept, so a reader that falls further
    behind than that misses events (it should then rescan once, as it does at start)."""

    async def append_run_event(self, connection_id: str, run_id: str, kind: RunEventKind) -> str:
        """Append one event; returns its cursor."""

    async def read_run_events(self, after: str = "", limit: int = 100) -> tuple[list[RunEvent], str]:
        """Up to `limit` events after cursor `after` ("": from the oldest kept), oldest first, and the
        cursor to read on from (the last event's, or `after` itself when there is none)."""

    async def run_events_tail(self) -> str:
        """The cursor of the newest event ("" if none): read from here to see only what comes next."""


class Store(
    ConnectionStore,
    TokenStore,
    OAuthStateStore,
    ConversationStore,
    RunStore,
    FingerprintStore,
    ScheduleStore,
    LockStore,
    DocumentStore,
    Counters,
    RunEventFeed,
    Protocol,
):
    """Everything the product keeps, from one backend."""

    async def ping(self) -> bool:
        """True if the backend answers (readiness)."""

    async def close(self) -> None: ...

    async def dump_all(self) -> list[tuple[str, bytes]]:
        """Every key and raw value (tests scan it for financial data and secrets)."""
