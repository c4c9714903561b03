"""Per record, the last write and the last failed write: what `sync why` needs that a run report lacks.

One JSON document per connection and entity in the store's `DocumentStore`, keyed by Xero's id:

    {"written": {"<xero id>": ["<run id>", "<UTC ISO time>", "created|updated|deactivated"]},
     "failed":  {"<xero id>": ["<run id>", "<UTC ISO time>", "<scrubbed reason>", "<RecordRefusal>"]}}

No names, codes or amounts: Xero's ids, run ids, times, and failure reasons already scrubbed of the
row's values (`bot.sync.failures.record_refusal`); entries written before the refusal was kept have
three items, their reason the whole sentence. A later good write clears a failure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.storage.base import DocumentStore

log = logging.getLogger(__name__)

_PREFIX = "xdc-ledger"


@dataclass(frozen=True)
class Mark:
    run_id: str
    at: datetime
    detail: str  # the kind of write, or the failure's reason (scrubbed)
    refusal: str = ""  # a failure's RecordRefusal ("" for writes, and failures noted before it was kept)


@dataclass
class Ledger:
    written: dict[str, Mark] = field(default_factory=dict)
    failed: dict[str, Mark] = field(default_factory=dict)


def _key(connection_id: str, entity: str) -> str:
    return f"{_PREFIX}:{connection_id}:{entity}"


def _marks(raw: Any) -> dict[str, Mark]:
    out: dict[str, Mark] = {}
    if not isinstance(raw, dict):
        return out
    for key, value in raw.items():
        try:
            run_id, at, detail, *refusal = value
            kept = str(refusal[0]) if refusal else ""
            out[str(key)] = Mark(str(run_id), datetime.fromisoformat(str(at)), str(detail), kept)
        except (TypeError, ValueError):
            continue  # an unreadable entry is as good as none
    return out


def _dump(marks: dict[str, Mark]) -> dict[str, list[str]]:
    return {
        key: [m.run_id, m.at.isoformat(), m.detail, *([m.refusal] if m.refusal else [])] for key, m in marks.items()
    }


async def load_ledger(store: DocumentStore, connection_id: str, entity: str) -> Ledger:
    found = (await store.read_documents([_key(connection_id, entity)])).get(_key(connection_id, entity))
    if found is None:
        return Ledger()
    return Ledger(written=_marks(found.value.get("written")), failed=_marks(found.value.get("failed")))


async def record_writes(
    store: DocumentStore,
    connection_id: str,
    entity: str,
    run_id: str,
    at: datetime,
    *,
    written: dict[str, str],
    failed: dict[str, str],
    refusals: dict[str, str] | None = None,
) -> None:
    """Note what one run wrote (key -> kind) and what failed (key -> scrubbed reason; `refusals`: key ->
    its RecordRefusal). Best effort: a run whose
    ledger could not be saved still succeeded; `sync why` then knows less."""
    if not written and not failed:
        return
    try:
        ledger = await load_ledger(store, connection_id, entity)
        for key, kind in written.items():
            ledger.written[key] = Mark(run_id, at, kind)
            ledger.failed.pop(key, None)
        for key, reason in failed.items():
            ledger.failed[key] = Mark(run_id, at, reason, (refusals or {}).get(key, ""))
        value = {"written": _dump(ledger.written), "failed": _dump(ledger.failed)}
        # One run per connection at a time (the scheduler's lease): no concurrent writer to lose to.
        await store.write_document(_key(connection_id, entity), value, None)
    except Exception:
        log.warning("could not save the record ledger of %s/%s", connection_id, entity, exc_info=True)


async def forget_ledgers(store: DocumentStore, connection_id: str, entities: list[str]) -> None:
    await store.delete_documents([_key(connection_id, e) for e in entities])
