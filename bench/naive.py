"""The alternative the sync cost is compared with: a naive connector that writes each record with its own
request.

It reads Xero with the product's own client (the same 4 calls, the whole chart every time: it keeps no
state between runs), maps with the product's own mapping, and upserts every row with one PATCH through
the product's own `DataverseClient.upsert`. So the only difference measured is the write strategy: one
request per record, every run, versus UpsertMultiple of only what changed.

It is given every advantage we can think of: `concurrency` PATCHes in flight at once (a truly naive one
writes them one after the other, which at 100 ms a call takes 8 minutes for 5,000 accounts).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from bot.storage.base import Connection
from bot.sync.mapping import (
    TABLE_OF,
    Entity,
    map_accounts,
    map_branding_themes,
    map_tax_rates,
    row_key,
)
from bot.sync.runtime import SyncRuntime
from bot.sync.tables import Table


@dataclass(frozen=True)
class NaiveReport:
    xero_calls: int
    dataverse_calls: int
    records: int
    failed: int


async def naive_run(runtime: SyncRuntime, connection: Connection, *, concurrency: int) -> NaiveReport:
    xero = runtime.xero.for_run()
    tenant, cid = connection.xero_tenant_id, connection.id
    await xero.organisation(cid, tenant)
    accounts = await xero.accounts(cid, tenant)
    tax_rates = await xero.tax_rates(cid, tenant)
    themes = await xero.branding_themes(cid, tenant)

    dv = runtime.dataverse_factory(connection)
    connector = connection.dataverse_connector_row_id
    writes: list[tuple[Table, dict[str, str], dict[str, Any]]] = []
    for entity, rows in (
        (Entity.ACCOUNTS, map_accounts(accounts, connector)),
        (Entity.TAX_RATES, map_tax_rates(tax_rates, connector)),
        (Entity.BRANDING_THEMES, map_branding_themes(themes, connector)),
    ):
        table = TABLE_OF[entity]
        writes += [(table, row_key(table, connector, key), row) for key, row in rows.items()]

    gate = asyncio.Semaphore(concurrency)
    failed = 0

    async def write(table: Table, key: dict[str, str], row: dict[str, Any]) -> None:
        nonlocal failed
        async with gate:
            try:
                await dv.upsert(table, key, row)
            except Exception:
                failed += 1

    await asyncio.gather(*(write(*w) for w in writes))
    return NaiveReport(xero_calls=xero.calls, dataverse_calls=dv.calls, records=len(writes), failed=failed)
