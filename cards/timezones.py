"""The timezones offered on the settings card.

Every IANA zone would not fit in a card (about 600 names, over 30 KB), so the list is IANA's own
`zone1970.tab` (one zone per region whose clocks agree since 1970) plus, for each country all of
whose zones that file merged into a neighbour's (Amsterdam into Brussels, Stockholm into Berlin),
its own zone from `zone.tab`, so people find their city. Research stations are left out. The zones a
connection already uses are always added; the server accepts any valid IANA zone.

Titles are the city ("New York", "Salta (Argentina)"): the filtered choice box matches what people
type, and the area prefix would cost about 3 KB of a card that must stay small.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache, lru_cache
from importlib import resources
from zoneinfo import available_timezones

_EXCLUDED_AREAS = ("Antarctica/", "Arctic/")
# Names zoneinfo can load that are not places: never offered, never accepted.
_NOT_PLACES = frozenset({"localtime", "posixrules", "Factory"})


def _rows(filename: str) -> list[list[str]]:
    content = (resources.files("tzdata.zoneinfo") / filename).read_text(encoding="utf-8")
    return [line.split("\t") for line in content.splitlines() if line and not line.startswith("#")]


@cache
def valid_zones() -> frozenset[str]:
    """Every IANA zone name this machine knows (from the tzdata package or the system)."""
    return frozenset(available_timezones() - _NOT_PLACES)


@cache
def offered_zones() -> tuple[str, ...]:
    canonical = {row[2] for row in _rows("zone1970.tab")}
    by_country: dict[str, list[str]] = {}
    for row in _rows("zone.tab"):
        by_country.setdefault(row[0], []).append(row[2])
    merged_away = {zones[0] for zones in by_country.values() if not any(z in canonical for z in zones)}
    known = valid_zones()
    offered = {z for z in canonical | merged_away if z in known and not z.startswith(_EXCLUDED_AREAS)}
    return ("UTC", *sorted(offered))


def zone_title(name: str) -> str:
    """ "Europe/Amsterdam" -> "Amsterdam"; "America/Indiana/Knox" -> "Knox (Indiana)"."""
    parts = name.replace("_", " ").split("/")
    if len(parts) == 1 or parts[0] == "Etc":
        # "Etc/GMT+5" is five hours *behind* UTC: only the full name is honest about that.
        return name if parts[0] == "Etc" else parts[0]
    if len(parts) == 2:
        return parts[1]
    return f"{parts[-1]} ({', '.join(parts[1:-1])})"


def timezone_choices(always: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(value, title) pairs: the offered zones plus any valid zone in `always`, UTC first, by title."""
    extra = frozenset(z for z in always if z in valid_zones())
    return list(_choices(extra))


@lru_cache(maxsize=256)
def _choices(extra: frozenset[str]) -> tuple[tuple[str, str], ...]:
    # Cached: every settings card renders this list (about 400 zones titled and sorted); the result is
    # a tuple of tuples, so no caller can change what the next one gets.
    zones = set(offered_zones())
    zones.update(extra)
    zones.discard("UTC")
    titled = [(z, zone_title(z)) for z in zones]
    counts: dict[str, int] = {}
    for _, title in titled:
        counts[title] = counts.get(title, 0) + 1
    # Two zones with the same city name (rare, mostly legacy links) keep their full names.
    named = [(z, title if counts[title] == 1 else z.replace("_", " ")) for z, title in titled]
    return (("UTC", "UTC"), *sorted(named, key=lambda pair: pair[1].casefold()))
