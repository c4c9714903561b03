"""Reading Xero for a run or a preview: which entities a connection syncs, one call per entity, mapped rows.

The run (`bot.sync.engine`) and the preview (`bot.sync.preview`) read through this one module, so a
preview sees exactly what the next run would: the same switches, the same calls (through the same
client, limiter and limits), the same mapping and the same order.

    Organisation -> Accounts -> TaxRates -> BrandingThemes -> TrackingCategories (categories, then options)

A switched-off entity is not read at all (no call against Xero's limits) and not written: its rows in
Dynamics stay as they are. Tracking categories and their options are one switch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.storage.base import Connection
from bot.sync.mapping import (
    Entity,
    Row,
    map_accounts,
    map_branding_themes,
    map_tax_rates,
    map_tracking,
)
from bot.sync.xero import XeroClient
from bot.sync.xero_models import Account, BrandingTheme, Organisation, TaxRate, TrackingCategory

# The order of writes: an option binds its category's row, so categories come before options.
SYNC_ORDER: tuple[Entity, ...] = (
    Entity.ACCOUNTS,
    Entity.TAX_RATES,
    Entity.BRANDING_THEMES,
    Entity.TRACKING_CATEGORIES,
    Entity.TRACKING_OPTIONS,
)


def enabled_entities(connection: Connection) -> frozenset[Entity]:
    """What the connection's switches let through."""
    on: set[Entity] = set()
    if connection.sync_accounts:
        on.add(Entity.ACCOUNTS)
    if connection.sync_tax_rates:
        on.add(Entity.TAX_RATES)
    if connection.sync_branding_themes:
        on.add(Entity.BRANDING_THEMES)
    if connection.sync_tracking_categories:
        on |= {Entity.TRACKING_CATEGORIES, Entity.TRACKING_OPTIONS}
    return frozenset(on)


def skipped_entities(connection: Connection) -> list[str]:
    """The entities switched off, in sync order, as run reports name them."""
    on = enabled_entities(connection)
    return [e.value for e in SYNC_ORDER if e not in on]


@dataclass(frozen=True)
class XeroData:
    """What one pull read from Xero (only the entities switched on)."""

    organisation: Organisation
    enabled: frozenset[Entity]
    accounts: list[Account] = field(default_factory=list)
    tax_rates: list[TaxRate] = field(default_factory=list)
    themes: list[BrandingTheme] = field(default_factory=list)
    tracking: list[TrackingCategory] = field(default_factory=list)
    accounts_complete: bool = True  # False when read with If-Modified-Since (only what changed)

    def rows(self, entity: Entity, connector_row_id: str) -> dict[str, Row]:
        """Mapped rows by Xero key for one entity."""
        if entity is Entity.ACCOUNTS:
            return map_accounts(self.accounts, connector_row_id)
        if entity is Entity.TAX_RATES:
            return map_tax_rates(self.tax_rates, connector_row_id)
        if entity is Entity.BRANDING_THEMES:
            return map_branding_themes(self.themes, connector_row_id)
        categories, options = map_tracking(self.tracking, connector_row_id)
        return categories if entity is Entity.TRACKING_CATEGORIES else options

    def complete(self, entity: Entity) -> bool:
        """Whether the rows are all Xero has (so the keys missing from them can be deactivated)."""
        return self.accounts_complete if entity is Entity.ACCOUNTS else True


async def read_xero(
    xero: XeroClient,
    connection: Connection,
    *,
    modified_since: datetime | None,
    enabled: frozenset[Entity] | None = None,
) -> XeroData:
    """One call per entity switched on, plus the Organisation. `modified_since`: accounts changed since."""
    on = enabled_entities(connection) if enabled is None else enabled
    cid, tenant = connection.id, connection.xero_tenant_id
    organisation = await xero.organisation(cid, tenant)
    accounts = (
        await xero.accounts(cid, tenant, modified_since=modified_since) if Entity.ACCOUNTS in on else []
    )
    tax_rates = await xero.tax_rates(cid, tenant) if Entity.TAX_RATES in on else []
    themes = await xero.branding_themes(cid, tenant) if Entity.BRANDING_THEMES in on else []
    tracking = await xero.tracking_categories(cid, tenant) if Entity.TRACKING_CATEGORIES in on else []
    return XeroData(
        organisation=organisation,
        enabled=on,
        accounts=accounts,
        tax_rates=tax_rates,
        themes=themes,
        tracking=tracking,
        accounts_complete=modified_since is None,
    )


def high_water(
    previous: datetime | None, accounts: list[Account], failed: set[str], *, ceiling: datetime
) -> datetime | None:
    """The newest UpdatedDateUTC seen, held back before any account that failed (so it is read again).

    Never later than the run's start: a timestamp from Xero in the future (clock skew, bad data) would
    otherwise hide every real change until the next full pass."""
    stamps = [min(a.updated_date_utc, ceiling) for a in accounts if a.updated_date_utc is not None]
    if not stamps:
        return previous
    mark = max(stamps)
    if previous is not None:
        mark = min(max(mark, previous), ceiling)
    failed_stamps = [a.updated_date_utc for a in accounts if a.account_id in failed]
    if failed_stamps:
        if any(s is None for s in failed_stamps):
            return previous
        mark = min(mark, min(s for s in failed_stamps if s is not None) - timedelta(seconds=1))
    return mark
