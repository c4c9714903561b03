"""Thousands of ready connections, made fast, for the scale benchmark (bench.scale).

The sign-in pages are what the setup benchmark and the tests exercise; here they would take most of the
time budget, so connections are made directly through the store and the product's token providers:

- one connection is made the real way (`Harness.connect`: both sign-in flows), as a template;
- each other connection gets its own small Xero organisation (`XeroSandbox.generate_org`), Xero tokens
  from the sandbox's identity server (`issue_tokens`: the consent + code exchange without the browser,
  one consent per 10 organisations) saved by `XeroTokenProvider.save` (encrypted, one copy per
  connection), and a copy of the template's encrypted MSAL token cache (the same Dynamics user and
  environment: the sandbox has a handful of users);
- the Connection record is the template's with its own id, organisation and plan;
- it is left as a successful run leaves it (steady state): the fingerprints of what that run would have
  written, computed by the product's own parsing, mapping and change planning from the organisation's
  records, and the connection's high-water mark and last full pass. The rows point at the template's
  Connector row, which exists in Dynamics (data rows need a real Connector to bind to). So a scheduled
  run finds nothing changed, as most runs of a connection on a 10-minute plan do.

Own organisations matter: Xero's limits are per organisation (60 calls a minute), so 10,000 connections
to one organisation would be a different (and impossible) workload.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from bot.storage.base import Connection, TokenKind
from bot.sync.fingerprint import plan_changes
from bot.sync.mapping import (
    TABLE_OF,
    Entity,
    Row,
    inactive_row,
    map_accounts,
    map_branding_themes,
    map_tax_rates,
)
from bot.sync.xero_auth import XeroTokenSet
from bot.sync.xero_models import Account, BrandingTheme, Organisation, TaxRate
from sandbox.xero import DEMO_EMAIL
from tests.integration.harness import Harness

BATCH = 50  # RedisStore uses redis-py's default pool: at most 100 commands in flight
# One consent covers this many organisations (as when a user ticks several on Xero's consent page):
# signing tokens is most of the sandbox's cost of a connection, and nothing measured depends on it.
TOKEN_GROUP = 10


@dataclass(frozen=True)
class Fleet:
    ids: list[str]
    seconds: float


async def make_fleet(h: Harness, n: int, *, plan: str, accounts: int, prefix: str = "scale") -> Fleet:
    loop = asyncio.get_running_loop()
    started = loop.time()
    template = await h.connect(name=f"{prefix}-template", plan=plan)
    dynamics_blob = await h.store.get_tokens(template.id, TokenKind.DYNAMICS)
    assert dynamics_blob is not None, "the template connection has no Dynamics sign-in"
    # The template itself must not run (the workers' start-up reconciliation would schedule it); its
    # Connector row stays in Dynamics for the fleet's rows to point at.
    await h.store.delete_connection(template.id)
    await h.store.delete_tokens(template.id)
    await h.store.unschedule(template.id)

    ids: list[str] = []
    for start in range(0, n, BATCH):
        pending = []
        tenants = {
            i: h.xero.generate_org(f"{prefix} org {i:05d}", accounts=accounts)
            for i in range(start, min(n, start + BATCH))
        }
        tokens: dict[int, XeroTokenSet] = {}
        indexes = list(tenants)
        for first in range(0, len(indexes), TOKEN_GROUP):
            group = indexes[first : first + TOKEN_GROUP]
            body = h.xero.issue_tokens(DEMO_EMAIL, tenant_ids=[tenants[i] for i in group])
            now = datetime.now(UTC)
            for i in group:
                tokens[i] = XeroTokenSet(
                    access_token=body["access_token"],
                    refresh_token=body["refresh_token"],
                    expires_at=now + timedelta(seconds=int(body["expires_in"])),
                    scope=str(body.get("scope", "")),
                    refresh_issued_at=now,
                )
        for i, tenant in tenants.items():
            cid = f"{prefix}-{i:05d}"
            now = datetime.now(UTC)
            state, fingerprints = _steady_state(h, tenant, template.dataverse_connector_row_id, now)
            connection = template.model_copy(
                update={
                    "id": cid,
                    "name": f"{prefix} {i:05d}",
                    "conversation_key": f"msteams:conversation-{cid}",
                    "xero_tenant_id": tenant,
                    "xero_connection_id": "",
                    "plan": plan,
                    "version": 0,
                    "created_at": now,
                    "updated_at": now,
                    **state,
                }
            )
            pending.append(_save(h, connection, tokens[i], dynamics_blob, fingerprints))
            ids.append(cid)
        await asyncio.gather(*pending)
    return Fleet(ids, loop.time() - started)


def _steady_state(
    h: Harness, tenant: str, connector_row_id: str, now: datetime
) -> tuple[dict[str, object], dict[str, dict[str, str]]]:
    """The connection fields and fingerprints a successful full run would leave (see the module doc)."""
    organisation = Organisation.model_validate(h.xero.organisation(tenant))
    accounts = [Account.model_validate(a) for a in h.xero.accounts(tenant)]
    tax_rates = [TaxRate.model_validate(t) for t in h.xero.tax_rates(tenant)]
    themes = [BrandingTheme.model_validate(t) for t in h.xero.branding_themes(tenant)]
    rows: dict[Entity, dict[str, Row]] = {
        Entity.ACCOUNTS: map_accounts(accounts, connector_row_id),
        Entity.TAX_RATES: map_tax_rates(tax_rates, connector_row_id),
        Entity.BRANDING_THEMES: map_branding_themes(themes, connector_row_id),
    }
    fingerprints = {}
    for entity, mapped in rows.items():
        table = TABLE_OF[entity]
        changes = plan_changes(
            mapped, {}, complete=True, inactive=partial(inactive_row, table, connector_row_id)
        )
        fingerprints[entity.value] = {c.key: c.fingerprint for c in changes.changes}
    stamps = [a.updated_date_utc for a in accounts if a.updated_date_utc is not None]
    last_run = now - timedelta(minutes=10)
    state: dict[str, object] = {
        "xero_org_name": organisation.name or "",
        "xero_timezone": organisation.iana_timezone or "",
        "accounts_modified_since": max(stamps) if stamps else None,
        "last_full_pass_at": last_run,
        "last_run_at": last_run,
        "last_success_at": last_run,
        "last_outcome": "succeeded",
    }
    return state, fingerprints


async def _save(
    h: Harness,
    connection: Connection,
    tokens: XeroTokenSet,
    dynamics_blob: bytes,
    fingerprints: dict[str, dict[str, str]],
) -> None:
    await h.runtime.xero_tokens.save(connection.id, tokens)
    await h.store.put_tokens(connection.id, TokenKind.DYNAMICS, dynamics_blob)
    for entity, values in fingerprints.items():
        await h.store.put_fingerprints(connection.id, entity, values)
    await h.store.create_connection(connection)
