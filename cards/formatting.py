"""One way to show times, durations and counts on every card.

Times are `YYYY-MM-DD HH:MM` followed by the zone they are in ("UTC" or the IANA name), so a user
never has to guess which clock a card speaks of.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.storage.base import EntityCounts, RunOutcome
from bot.sync.tables import BRANDING_THEME, CHART_OF_ACCOUNTS, TAX_TYPE, TRACKING_CATEGORY, TRACKING_OPTION

_FORMAT = "%Y-%m-%d %H:%M"

OUTCOME_WORDS: dict[RunOutcome, str] = {
    RunOutcome.RUNNING: "⏳ Running",
    RunOutcome.SUCCEEDED: "✅ Succeeded",
    RunOutcome.PARTIAL: "⚠️ Finished with failures",
    RunOutcome.FAILED: "❌ Failed",
    RunOutcome.SKIPPED: "⏭️ Skipped",
}

TRIGGER_WORDS: dict[str, str] = {
    "schedule": "scheduled",
    "on_demand": "on demand",
    "setup": "first sync",
}

# Run reports key counts by table logical name or by Xero collection; both read the same to a user.
_ENTITY_LABELS: dict[str, str] = {
    CHART_OF_ACCOUNTS.logical_name: "Chart of Accounts",
    TAX_TYPE.logical_name: "Tax Rates",
    BRANDING_THEME.logical_name: "Branding Themes",
    "accounts": "Chart of Accounts",
    "tax_rates": "Tax Rates",
    "taxrates": "Tax Rates",
    "branding_themes": "Branding Themes",
    "brandingthemes": "Branding Themes",
    TRACKING_CATEGORY.logical_name: "Tracking Categories",
    TRACKING_OPTION.logical_name: "Tracking Options",
    "tracking_categories": "Tracking Categories",
    "trackingcategories": "Tracking Categories",
    "tracking_options": "Tracking Options",
}
ENTITY_ORDER: tuple[str, ...] = (
    "Chart of Accounts",
    "Tax Rates",
    "Branding Themes",
    "Tracking Categories",
    "Tracking Options",
)
# A switch in the settings covers these; categories and their options are one switch.
_SWITCH_WORDS: dict[str, str] = {
    "accounts": "Chart of accounts",
    "tax_rates": "Tax rates",
    "branding_themes": "Branding themes",
    "tracking_categories": "Tracking categories",
}


def _aware(moment: datetime) -> datetime:
    # Stores hand back UTC; a naive value can only be UTC here.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def zone(name: str) -> ZoneInfo | None:
    """The zone, or None if the name is not a known IANA zone."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def format_utc(moment: datetime | None, never: str = "never") -> str:
    if moment is None:
        return never
    return f"{_aware(moment).astimezone(UTC).strftime(_FORMAT)} UTC"


def format_local(moment: datetime | None, timezone: str, never: str = "never") -> str:
    """In the connection's zone; falls back to UTC when the zone is unknown."""
    if moment is None:
        return never
    tz = zone(timezone)
    if tz is None or timezone == "UTC":
        return format_utc(moment, never)
    return f"{_aware(moment).astimezone(tz).strftime(_FORMAT)} {zone_label(timezone)}"


def clock_time(moment: datetime, timezone: str) -> str:
    """`YYYY-MM-DD HH:MM` in the zone (UTC if unknown), without the zone: for tables that name it once."""
    tz = zone(timezone) or UTC
    return _aware(moment).astimezone(tz).strftime(_FORMAT)


def clock_name(timezone: str) -> str:
    """The zone `clock_time` used, as a label."""
    return zone_label(timezone) if zone(timezone) else "UTC"


def format_both(moment: datetime | None, timezone: str, never: str = "never") -> str:
    """UTC first, then local when the connection is not on UTC."""
    utc = format_utc(moment, never)
    if moment is None or zone(timezone) is None or timezone == "UTC":
        return utc
    return f"{utc} ({format_local(moment, timezone)})"


def zone_label(name: str) -> str:
    """An IANA name as people read it: "America/New_York" -> "America/New York"."""
    return name.replace("_", " ")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "still running"
    if seconds < 0:
        seconds = 0
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def format_count(value: int) -> str:
    return f"{value:,}"


def entity_label(key: str) -> str:
    label = _ENTITY_LABELS.get(key) or _ENTITY_LABELS.get(key.lower())
    if label:
        return label
    return key.replace("_", " ").strip().capitalize() or "Records"


def ordered_counts(counts: dict[str, EntityCounts]) -> list[tuple[str, EntityCounts]]:
    """(label, counts) with the three synced tables first in their usual order."""
    labelled = [(entity_label(key), value) for key, value in counts.items()]

    def rank(item: tuple[str, EntityCounts]) -> tuple[int, str]:
        label = item[0]
        return (ENTITY_ORDER.index(label) if label in ENTITY_ORDER else len(ENTITY_ORDER), label)

    return sorted(labelled, key=rank)


def total_counts(counts: dict[str, EntityCounts]) -> EntityCounts:
    return EntityCounts(
        created=sum(c.created for c in counts.values()),
        updated=sum(c.updated for c in counts.values()),
        unchanged=sum(c.unchanged for c in counts.values()),
        deactivated=sum(c.deactivated for c in counts.values()),
        failed=sum(c.failed for c in counts.values()),
    )


def counts_in_words(counts: EntityCounts) -> str:
    """ "3 created, 1 updated, 40 unchanged" (zeros left out, except when nothing happened at all)."""
    parts = [
        (counts.created, "created"),
        (counts.updated, "updated"),
        (counts.unchanged, "unchanged"),
        (counts.deactivated, "deactivated"),
        (counts.failed, "failed"),
    ]
    shown = [f"{format_count(n)} {word}" for n, word in parts if n]
    return ", ".join(shown) if shown else "no records"


def outcome_words(outcome: RunOutcome | str) -> str:
    try:
        return OUTCOME_WORDS[RunOutcome(outcome)]
    except ValueError:
        return str(outcome).replace("_", " ").capitalize() or "Unknown"


def skipped_in_words(skipped: list[str] | tuple[str, ...]) -> list[str]:
    """One line per switched-off entity:
    "Tax rates: skipped (switched off; rows in Dynamics left as they are)"."""
    return [
        f"{_SWITCH_WORDS[key]}: skipped (switched off; rows in Dynamics left as they are)"
        for key in skipped
        if key in _SWITCH_WORDS
    ]
