"""customizations.xml validates against Microsoft's CustomizationsSolution.xsd (W1-W4 applied in
memory, nothing tolerated), and the validation really rejects what the schema does not allow."""

from __future__ import annotations

import hashlib
import re

import pytest

from bot.solution.customizations import customizations_xml
from tests.solution.xsd import SPECS, errors


@pytest.mark.parametrize("managed", [True, False], ids=["managed", "unmanaged"])
def test_customizations_validate_against_the_published_schema(managed: bool) -> None:
    assert errors(customizations_xml(managed=managed)) == []


# Each mutation (regex, replacement, what the error names) is a plausible generator bug; the schema
# must reject every one.
def _literal(text: bytes) -> bytes:
    return re.escape(text)


MUTATIONS = {
    "precision-not-accuracy": (_literal(b"<Accuracy>4</Accuracy>"), b"<Precision>4</Precision>", "Precision"),
    "element-newer-than-schema": (
        _literal(b"<IsDataSourceSecret>0</IsDataSourceSecret>"),
        b"<IsSearchable>0</IsSearchable>",
        "IsSearchable",
    ),
    "unknown-cascade": (
        _literal(b"<CascadeDelete>Cascade</CascadeDelete>"),
        b"<CascadeDelete>Always</CascadeDelete>",
        "CascadeDelete",
    ),
    "unknown-privilege-depth": (_literal(b'level="Global"'), b'level="Organization"', "level"),
    "unknown-column-type": (_literal(b"<Type>nvarchar</Type>"), b"<Type>string</Type>", "Type"),
    "key-without-columns": (
        rb"\s*<EntityKeyAttributes>.*?</EntityKeyAttributes>",
        b"",
        "EntityKeyAttributes",
    ),
    "role-without-id": (_literal(b'<Role id="'), b'<Role guid="', "Role"),
    "boolean-as-word": (
        _literal(b"<IsCustomField>1</IsCustomField>"),
        b"<IsCustomField>true</IsCustomField>",
        "IsCustomField",
    ),
    "version-not-a-number": (
        _literal(b"<IntroducedVersion>1.0.0.0</IntroducedVersion>"),
        b"<IntroducedVersion>v1</IntroducedVersion>",
        "IntroducedVersion",
    ),
}


@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_the_schema_rejects_a_broken_document(mutation: tuple[bytes, bytes, str]) -> None:
    pattern, bad, element = mutation
    broken, count = re.subn(pattern, bad, customizations_xml(managed=False), count=1, flags=re.S)
    assert count == 1
    found = errors(broken)
    assert found, "the broken document validated"
    assert any(element in e for e in found), found


def test_a_real_2023_export_is_not_tolerated() -> None:
    """Newer exports carry elements the 9.0-era schema lacks: the validator reports them (no lax
    mode hides unknown elements), which is why our generator leaves them out."""
    found = errors((SPECS / "examples" / "test-solution-customizations.xml").read_bytes())
    assert any("AutoNumberFormat" in e for e in found)
    assert any("CascadeArchive" in e for e in found)


def test_the_schemas_are_verbatim_copies() -> None:
    """The README lists each file's size and sha256 prefix; the workarounds live in memory only."""
    readme = (SPECS / "README.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `([^`]+\.xsd)`[^|]*\|[^|]*\|[^|]*\|[^|]*\| (\d+) \| ([0-9a-f]{16}) \|", readme, re.M
    )
    assert len(rows) == 9
    for name, size, digest in rows:
        data = (SPECS / name).read_bytes()
        assert len(data) == int(size), name
        assert hashlib.sha256(data).hexdigest()[:16] == digest, name
