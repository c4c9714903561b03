"""The package covers bot/sync/tables.py: every table, column (type, length, precision, required
level), choice value, relationship and navigation property, alternate key and role privilege (with
its depth) is in customizations.xml, so a change to tables.py the generator misses fails here.

`differences()` compares independently of the generator (its own type names, its own reading of the
XML); the mutation tests show it reports what is missing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from bot.solution.customizations import customizations_xml
from bot.sync.tables import (
    ALL_TABLES,
    CONNECTOR_USER_ROLE,
    OPTION_SETS,
    OPTION_SETS_BY_ENUM,
    RELATIONSHIPS,
    REQUIRED_ROLE_PRIVILEGES,
    TABLES_BY_NAME,
    Column,
    ColumnType,
    Table,
)

# customizations.xml <Type> for each of our column types (CrmDataType in CustomizationsSolution.xsd).
EXPECTED_TYPE = {
    "string": "nvarchar",
    "memo": "ntext",
    "int": "int",
    "decimal": "decimal",
    "bool": "bit",
    "datetime": "datetime",
    "choice": "picklist",
    "lookup": "lookup",
    "guid": "primarykey",
}


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None else (found.text or "")


def _label(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return None if found is None else found.get("description")


def _column_differences(table: Table, col: Column, attribute: ET.Element | None) -> list[str]:
    where = f"{table.logical_name}.{col.name}"
    if attribute is None:
        return [f"{where}: no attribute {col.schema}"]
    wrong: list[str] = []

    def expect(path: str, value: object) -> None:
        if _text(attribute, path) != str(value):
            wrong.append(f"{where}: {path} is {_text(attribute, path)!r}, expected {value!r}")

    expect("Type", EXPECTED_TYPE[col.type.value])
    expect("LogicalName", col.name)
    expect("RequiredLevel", col.required_level.value)
    expect("IntroducedVersion", col.introduced)
    label = attribute.find("displaynames/displayname")
    if label is None or label.get("description") != col.label:
        wrong.append(f"{where}: display name is not {col.label!r}")
    if col.type in (ColumnType.STRING, ColumnType.MEMO):
        expect("MaxLength", col.max_length)
    if col.type is ColumnType.STRING:
        expect("Length", 2 * (col.max_length or 0))
    if col.type is ColumnType.DECIMAL:
        expect("Accuracy", col.precision)
    if col.type in (ColumnType.DECIMAL, ColumnType.INT) and col.min_value is not None:
        if float(_text(attribute, "MinValue") or "nan") != col.min_value:
            wrong.append(f"{where}: MinValue is not {col.min_value}")
        if float(_text(attribute, "MaxValue") or "nan") != col.max_value:
            wrong.append(f"{where}: MaxValue is not {col.max_value}")
    if col.type is ColumnType.CHOICE and col.choices is not None:
        expect("OptionSetName", OPTION_SETS_BY_ENUM[col.choices].name)
    if col.type is ColumnType.BOOL:
        values = sorted(o.get("value", "") for o in attribute.iterfind("optionset/options/option"))
        if values != ["0", "1"] or _text(attribute, "optionset/OptionSetType") != "bit":
            wrong.append(f"{where}: not a two-option column")
    if col.name == table.primary_name and "PrimaryName" not in (_text(attribute, "DisplayMask") or ""):
        wrong.append(f"{where}: not marked PrimaryName")
    return wrong


def _table_differences(table: Table, root: ET.Element) -> list[str]:
    entity = next((e for e in root.iterfind("Entities/Entity") if _text(e, "Name") == table.schema), None)
    if entity is None:
        return [f"{table.logical_name}: no Entity {table.schema}"]
    info = entity.find("EntityInfo/entity")
    assert info is not None
    wrong = []
    if info.get("Name") != table.schema or _text(info, "EntitySetName") != table.entity_set:
        wrong.append(f"{table.logical_name}: schema or entity set name differs")
    if _text(info, "OwnershipTypeMask") != table.ownership.value:
        wrong.append(f"{table.logical_name}: ownership differs")
    if _text(info, "IntroducedVersion") != table.introduced:
        wrong.append(
            f"{table.logical_name}: introduced in {_text(info, 'IntroducedVersion')}, not {table.introduced}"
        )
    names = info.find("LocalizedNames/LocalizedName")
    if names is None or names.get("description") != table.display_name:
        wrong.append(f"{table.logical_name}: display name differs")
    attributes = {a.get("PhysicalName"): a for a in info.iterfind("attributes/attribute")}
    for col in table.columns:
        wrong += _column_differences(table, col, attributes.get(col.schema))
    ours = {c.schema for c in table.columns}
    custom = {name for name, a in attributes.items() if _text(a, "IsCustomField") == "1"}
    wrong += [f"{table.logical_name}: {name} is not in tables.py" for name in sorted(custom - ours)]
    keys = list(info.iterfind("EntityKeys/EntityKey"))
    if table.alternate_key:
        key = next((k for k in keys if _text(k, "Name") == table.alternate_key_name), None)
        if key is None:
            wrong.append(f"{table.logical_name}: no alternate key {table.alternate_key_name}")
        else:
            columns = tuple(a.text for a in key.iterfind("EntityKeyAttributes/AttributeName"))
            if columns != table.alternate_key:
                wrong.append(f"{table.logical_name}: key columns {columns} != {table.alternate_key}")
            label = key.find("displaynames/displayname")
            if label is None or label.get("description") != table.alternate_key_display:
                wrong.append(f"{table.logical_name}: key display name differs")
    if len(keys) != (1 if table.alternate_key else 0):
        wrong.append(f"{table.logical_name}: {len(keys)} alternate keys")
    return wrong


def _relationship_differences(root: ET.Element) -> list[str]:
    found = {r.get("Name"): r for r in root.iterfind("EntityRelationships/EntityRelationship")}
    wrong = []
    for rel in RELATIONSHIPS:
        node = found.get(rel.schema_name)
        if node is None:
            wrong.append(f"no relationship {rel.schema_name}")
            continue
        lookup = TABLES_BY_NAME[rel.referencing].column(rel.lookup)
        expected = {
            "EntityRelationshipType": "OneToMany",
            "ReferencingEntityName": TABLES_BY_NAME[rel.referencing].schema,
            "ReferencedEntityName": TABLES_BY_NAME[rel.referenced].schema,
            "ReferencingAttributeName": lookup.schema,
            "CascadeDelete": rel.cascade_delete,
        }
        wrong += [f"{rel.schema_name}: {k} is not {v}" for k, v in expected.items() if _text(node, k) != v]
        roles = {
            _text(r, "RelationshipRoleType"): _text(r, "NavigationPropertyName")
            for r in node.iterfind("EntityRelationshipRoles/EntityRelationshipRole")
        }
        if roles != {"1": lookup.navigation_property, "0": rel.schema_name}:
            wrong.append(f"{rel.schema_name}: navigation properties {roles}")
    return wrong


def _optionset_differences(root: ET.Element) -> list[str]:
    found = {o.get("Name"): o for o in root.iterfind("optionsets/optionset")}
    wrong = []
    for option_set in OPTION_SETS:
        node = found.get(option_set.name)
        if node is None:
            wrong.append(f"no option set {option_set.name}")
            continue
        written = [
            (int(o.get("value", "0")), _label(o, "labels/label")) for o in node.iterfind("options/option")
        ]
        expected = [(int(v), label) for v, label in option_set.labels]
        if written != expected:
            wrong.append(f"{option_set.name}: options {written} != {expected}")
        if sorted(v for v, _ in written) != sorted(int(m) for m in option_set.options):
            wrong.append(f"{option_set.name}: values differ from the enum")
    return wrong


def _role_differences(root: ET.Element) -> list[str]:
    roles = [r for r in root.iterfind("Roles/Role") if r.get("name") == CONNECTOR_USER_ROLE.name]
    if len(roles) != 1:
        return [f"{len(roles)} roles named {CONNECTOR_USER_ROLE.name}"]
    granted = {p.get("name"): p.get("level") for p in roles[0].iterfind("RolePrivileges/RolePrivilege")}
    wrong = [
        f"{rp.name}: level {granted.get(rp.name)} != {rp.depth.value}"
        for rp in CONNECTOR_USER_ROLE.role_privileges
        if granted.get(rp.name) != rp.depth.value
    ]
    ranks = {"Basic": 0, "Local": 1, "Deep": 2, "Global": 3}
    for name, depth, _privilege, _table in REQUIRED_ROLE_PRIVILEGES:
        if ranks.get(granted.get(name) or "", -1) < ranks[depth.value]:
            wrong.append(f"the setup check needs {name} at {depth.value}")
    if len(granted) != len(CONNECTOR_USER_ROLE.role_privileges):
        wrong.append("the role grants privileges tables.py does not list")
    return wrong


def differences(xml: bytes) -> list[str]:
    root = ET.fromstring(xml)
    wrong: list[str] = []
    for table in ALL_TABLES:
        wrong += _table_differences(table, root)
    return wrong + _relationship_differences(root) + _optionset_differences(root) + _role_differences(root)


@pytest.mark.parametrize("managed", [True, False], ids=["managed", "unmanaged"])
def test_the_package_covers_tables_py(managed: bool) -> None:
    assert differences(customizations_xml(managed=managed)) == []


def test_every_kind_of_definition_is_covered() -> None:
    """The definition exercises what the checks check (otherwise a check could pass vacuously)."""
    kinds = {c.type for t in ALL_TABLES for c in t.columns}
    assert kinds == set(ColumnType)
    assert any(c.precision == 4 for t in ALL_TABLES for c in t.columns)
    assert RELATIONSHIPS
    assert OPTION_SETS
    assert CONNECTOR_USER_ROLE.role_privileges
    assert any(len(t.alternate_key) == 2 for t in ALL_TABLES)


# Each mutation stands for a generator that missed a change in tables.py.
MISSES = {
    "column": (rb'<attribute PhysicalName="xdc_TaxType">.*?</attribute>\s*', b"", "no attribute xdc_TaxType"),
    "precision": (rb"<Accuracy>4</Accuracy>", b"<Accuracy>2</Accuracy>", "Accuracy"),
    "max-length": (rb"<MaxLength>2000</MaxLength>", b"<MaxLength>200</MaxLength>", "MaxLength"),
    "required-level": (
        rb"<RequiredLevel>required</RequiredLevel>",
        b"<RequiredLevel>none</RequiredLevel>",
        "RequiredLevel",
    ),
    "option-value": (rb'<option value="100000003"', b'<option value="100000009"', "options"),
    "navigation-property": (
        rb"<NavigationPropertyName>xdc_ConnectorId</NavigationPropertyName>",
        b"<NavigationPropertyName>xdc_connectorid</NavigationPropertyName>",
        "navigation properties",
    ),
    "key-column": (
        rb"<AttributeName>xdc_xerotaxtype</AttributeName>",
        b"<AttributeName>xdc_name</AttributeName>",
        "key columns",
    ),
    "privilege-depth": (
        rb'(<RolePrivilege name="prvReadxdc_TaxType" level=")Global',
        rb"\1Basic",
        "prvReadxdc_TaxType",
    ),
    "introduced-version": (
        rb"(<attribute PhysicalName=\"xdc_XeroTrackingOptionId\">.*?<IntroducedVersion>)[^<]*",
        rb"\g<1>1.0.0.0",
        "IntroducedVersion",
    ),
    "cascade": (
        rb"<CascadeDelete>Cascade</CascadeDelete>",
        b"<CascadeDelete>RemoveLink</CascadeDelete>",
        "CascadeDelete",
    ),
}


@pytest.mark.parametrize("miss", MISSES.values(), ids=MISSES.keys())
def test_a_missed_change_is_reported(miss: tuple[bytes, bytes, str]) -> None:
    pattern, replacement, reported = miss
    changed, count = re.subn(pattern, replacement, customizations_xml(managed=False), count=1, flags=re.S)
    assert count == 1
    found = differences(changed)
    assert any(reported in line for line in found), found
