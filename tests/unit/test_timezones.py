"""Windows / Xero zone names to IANA, and the IANA helpers."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest
import yaml

from bot.sync.timezones import (
    WINDOWS_TO_IANA,
    all_iana_zones,
    is_valid_iana,
    windows_to_iana,
    xero_timezone_to_iana,
)

SPEC = Path(__file__).resolve().parents[2] / "specs" / "xero" / "xero_accounting.yaml"


def xero_timezone_codes() -> list[str]:
    with SPEC.open(encoding="utf-8") as handle:
        spec = yaml.safe_load(handle)
    codes: list[str] = spec["components"]["schemas"]["TimeZone"]["enum"]
    return codes


def test_every_xero_timezone_code_maps_to_a_real_zone() -> None:
    codes = xero_timezone_codes()
    assert len(codes) == 141
    unmapped = [code for code in codes if xero_timezone_to_iana(code) is None]
    assert unmapped == []
    for code in codes:
        zoneinfo.ZoneInfo(xero_timezone_to_iana(code) or "")


def test_every_table_entry_is_a_valid_zone_and_names_stay_distinct() -> None:
    assert len(WINDOWS_TO_IANA) >= 139
    for name, iana in WINDOWS_TO_IANA.items():
        assert is_valid_iana(iana), (name, iana)
    squashed = {"".join(ch for ch in name.upper() if ch.isalnum()) for name in WINDOWS_TO_IANA}
    assert len(squashed) == len(WINDOWS_TO_IANA)


@pytest.mark.parametrize(
    ("code", "iana"),
    [
        ("NEWZEALANDSTANDARDTIME", "Pacific/Auckland"),
        ("AUSEASTERNSTANDARDTIME", "Australia/Sydney"),
        ("GMTSTANDARDTIME", "Europe/London"),
        ("EAUSTRALIASTANDARDTIME", "Australia/Brisbane"),
        ("CENAUSTRALIASTANDARDTIME", "Australia/Adelaide"),
        ("AUSCENTRALWSTANDARDTIME", "Australia/Eucla"),
        ("CENTRALSTANDARDTIME(MEXICO)", "America/Mexico_City"),
        ("CENTRALSTANDARDTIME", "America/Chicago"),
        ("PACIFICSTANDARDTIME", "America/Los_Angeles"),
        ("INDIASTANDARDTIME", "Asia/Kolkata"),
        ("UTC", "Etc/UTC"),
        ("UTC+12", "Etc/GMT-12"),
        ("UTC02", "Etc/GMT+2"),
        ("UTC11", "Etc/GMT+11"),
        ("RUSSIATIMEZONE10", "Asia/Srednekolymsk"),
        ("KAMCHATKASTANDARDTIME", "Asia/Kamchatka"),
        ("MIDATLANTICSTANDARDTIME", "Etc/GMT+2"),
        ("TURKSANDCAICOSSTANDARDTIME", "America/Grand_Turk"),
        ("YUKONSTANDARDTIME", "America/Whitehorse"),
        ("newzealandstandardtime", "Pacific/Auckland"),
    ],
)
def test_xero_codes(code: str, iana: str) -> None:
    assert xero_timezone_to_iana(code) == iana


@pytest.mark.parametrize("code", ["", "   ", "MARSSTANDARDTIME", "Pacific/Auckland"])
def test_unknown_xero_codes(code: str) -> None:
    assert xero_timezone_to_iana(code) is None


@pytest.mark.parametrize(
    ("name", "iana"),
    [
        ("New Zealand Standard Time", "Pacific/Auckland"),
        ("AUS Eastern Standard Time", "Australia/Sydney"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("Central Standard Time (Mexico)", "America/Mexico_City"),
        ("UTC-11", "Etc/GMT+11"),
        ("UTC+13", "Etc/GMT-13"),
        ("  GMT Standard Time ", "Europe/London"),
        ("gmt standard time", "Europe/London"),
        ("E. South America Standard Time", "America/Sao_Paulo"),
        ("Mid-Atlantic Standard Time", "Etc/GMT+2"),
    ],
)
def test_windows_names(name: str, iana: str) -> None:
    assert windows_to_iana(name) == iana


@pytest.mark.parametrize("name", ["", "Nowhere Standard Time", "Europe/London"])
def test_unknown_windows_names(name: str) -> None:
    assert windows_to_iana(name) is None


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("Pacific/Auckland", True),
        ("UTC", True),
        ("America/Argentina/Buenos_Aires", True),
        ("Pacific/Atlantis", False),
        ("", False),
        (" Europe/London", False),
        ("../../etc/passwd", False),
        ("/etc/localtime", False),
        ("Europe", False),
    ],
)
def test_is_valid_iana(name: str, valid: bool) -> None:
    assert is_valid_iana(name) is valid


def test_all_iana_zones_sorted_and_usable() -> None:
    zones = all_iana_zones()
    assert list(zones) == sorted(zones)
    assert len(zones) > 400
    assert "Pacific/Auckland" in zones
    assert "Factory" not in zones
    assert "localtime" not in zones
    assert all(is_valid_iana(zone) for zone in zones)
