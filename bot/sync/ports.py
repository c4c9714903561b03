"""The sync core's ports: what it needs from the outside, as protocols.

The Teams side implements `Notifier` (bot.teams.notifier); tests implement it with a recorder.
The core imports nothing from botbuilder.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.storage.base import Connection, RunRecord


class AttentionReason(StrEnum):
    XERO_RECONNECT = "xero_reconnect"  # refresh token revoked/expired (invalid_grant)
    DYNAMICS_RECONNECT = "dynamics_reconnect"  # MSAL interaction_required / invalid_grant
    XERO_TOKEN_EXPIRING = "xero_token_expiring"  # refresh token unused for nearly 60 days, not refreshable
    # Entra refresh token inactive for nearly 90 days and the sign-in keeper could not refresh it.
    DYNAMICS_SIGNIN_EXPIRING = "dynamics_signin_expiring"
    REPEATED_FAILURES = "repeated_failures"  # three failed runs in a row
    TIMEZONE_MISMATCH = "timezone_mismatch"
    XERO_DAILY_LIMIT = "xero_daily_limit"  # daily allowance nearly used
    TENANT_DISCONNECTED = "tenant_disconnected"  # Xero 403 AuthenticationUnsuccessful


@runtime_checkable
class Notifier(Protocol):
    async def run_started(self, connection: Connection, run: RunRecord) -> None: ...

    async def run_progress(self, connection: Connection, run: RunRecord, stage: str) -> None: ...

    async def run_finished(self, connection: Connection, run: RunRecord) -> None: ...

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: str) -> None: ...


class NullNotifier:
    """Tells nobody (workers without a Teams side configured, benchmarks)."""

    async def run_started(self, connection: Connection, run: RunRecord) -> None:
        return None

    async def run_progress(self, connection: Connection, run: RunRecord, stage: str) -> None:
        return None

    async def run_finished(self, connection: Connection, run: RunRecord) -> None:
        return None

    async def needs_attention(self, connection: Connection, reason: AttentionReason, detail: str) -> None:
        return None
