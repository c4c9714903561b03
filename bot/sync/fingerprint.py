"""Fingerprints of mapped rows: what lets a run write only what changed.

A fingerprint is the SHA-256 of the row's canonical JSON (sorted keys, no whitespace). Only the hash is
stored (`FingerprintStore`), never the row: the store must hold no financial data, and a hash of a whole
row does not give back an account name or a rate.

Canonical JSON: floats that are whole numbers hash like the integer (`15.0` and `15`), so a value that
round-trips through a provider as another numeric type does not look like a change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from typing import Any

# Bumped when the canonical form changes, so old hashes never match new ones by accident.
_VERSION = "1"


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, Enum):
        return _canonical(value.value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value)).normalize()
        if number == number.to_integral_value():
            return int(number)
        return format(number, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    raise TypeError(f"cannot fingerprint a value of type {type(value).__name__}")


def canonical_json(row: Mapping[str, Any]) -> str:
    """The one text a row hashes as: sorted keys, compact separators, numbers normalised."""
    return json.dumps(_canonical(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(row: Mapping[str, Any]) -> str:
    """A stable hash of a mapped row (hex SHA-256)."""
    digest = hashlib.sha256(f"{_VERSION}\n{canonical_json(row)}".encode()).hexdigest()
    return digest


class ChangeKind(StrEnum):
    CREATE = "created"
    UPDATE = "updated"
    DEACTIVATE = "deactivated"


@dataclass(frozen=True)
class Change:
    key: str  # Xero's key
    kind: ChangeKind
    row: dict[str, Any]
    fingerprint: str


@dataclass(frozen=True)
class ChangeSet:
    """What a run has to write for one entity, and how many rows it can leave alone."""

    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0

    def count(self, kind: ChangeKind) -> int:
        return sum(1 for c in self.changes if c.kind is kind)


def plan_changes(
    rows: Mapping[str, Mapping[str, Any]],
    previous: Mapping[str, str],
    *,
    complete: bool,
    inactive: Callable[[str], Mapping[str, Any]],
) -> ChangeSet:
    """Compare mapped rows (by Xero key) with the fingerprints of what was last written.

    New keys are created, different hashes updated, equal hashes left alone. When `rows` is Xero's
    complete list (`complete`), keys written before but missing now are deactivated, unless what was
    last written is already their inactive row.
    """
    changes: list[Change] = []
    unchanged = 0
    for key in sorted(rows):
        row = dict(rows[key])
        digest = fingerprint(row)
        before = previous.get(key)
        if before == digest:
            unchanged += 1
        else:
            kind = ChangeKind.CREATE if before is None else ChangeKind.UPDATE
            changes.append(Change(key, kind, row, digest))
    if complete:
        for key in sorted(set(previous) - set(rows)):
            row = dict(inactive(key))
            digest = fingerprint(row)
            # Already written as inactive: nothing to do, and not counted (Xero no longer has it).
            if previous[key] != digest:
                changes.append(Change(key, ChangeKind.DEACTIVATE, row, digest))
    return ChangeSet(changes, unchanged)
