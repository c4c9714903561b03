"""Our solution.xml and customizations.xml are written as real Dataverse exports write them: same
elements in the same order, same attributes, same way of writing keys, relationships, navigation
properties, roles and two-option columns. The references are real exports stored in
specs/dataverse/examples/ (sources in specs/dataverse/README.md); Microsoft publishes no schema for
solution.xml, and CustomizationsSolution.xsd does not fix the order of most of these elements."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

import pytest

from bot.solution.customizations import customizations_xml
from bot.solution.manifest import solution_xml
from bot.sync.tables import ALL_TABLES, CONNECTOR_USER_ROLE, OPTION_SETS, RELATIONSHIPS
from tests.solution.xsd import SPECS

EXAMPLES = SPECS / "examples"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
# Written by newer exports only; the 9.0 schema rejects them, so we leave them out (README).
NEWER_THAN_SCHEMA = {
    "AutoNumberFormat",
    "IsSearchable",
    "IsFilterable",
    "IsRetrievable",
    "IsLocalizable",
    "CascadeArchive",
    "IsRetrieveAuditEnabled",
    "IsRetrieveMultipleAuditEnabled",
    "IsSolutionAware",
}


def _example(name: str) -> ET.Element:
    return ET.parse(EXAMPLES / name).getroot()


def _tags(node: ET.Element) -> list[str]:
    return [child.tag for child in node]


def _in_same_order(ours: Iterable[str], reference: Iterable[str]) -> None:
    """The elements both have appear in the same order in both."""
    ours, reference = list(ours), list(reference)
    common = set(ours) & set(reference)
    assert [t for t in ours if t in common] == [t for t in reference if t in common]


@pytest.fixture(scope="module")
def reference() -> ET.Element:
    return _example("test-solution-customizations.xml")


@pytest.fixture(scope="module", params=[True, False], ids=["managed", "unmanaged"])
def ours(request: pytest.FixtureRequest) -> ET.Element:
    return ET.fromstring(customizations_xml(managed=request.param))


@pytest.mark.parametrize("managed", [True, False], ids=["managed", "unmanaged"])
def test_solution_xml_is_laid_out_as_an_export(managed: bool) -> None:
    raw = solution_xml(managed=managed, version="1.1.0.0")
    root, example = ET.fromstring(raw), _example("test-solution-solution.xml")
    assert raw.startswith(b'<ImportExportXml version="9.2.')
    assert b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"' in raw
    assert list(root.attrib) == list(example.attrib)
    assert (root.get("SolutionPackageVersion"), root.get("generatedBy"), root.get("languagecode")) == (
        "9.2",
        "CrmLive",
        "1033",
    )
    manifest, reference = root.find("SolutionManifest"), example.find("SolutionManifest")
    assert manifest is not None
    assert reference is not None
    assert _tags(manifest) == _tags(reference)
    publisher, reference_publisher = manifest.find("Publisher"), reference.find("Publisher")
    assert publisher is not None
    assert reference_publisher is not None
    assert _tags(publisher) == _tags(reference_publisher)
    for ours_address, their_address in zip(
        publisher.iterfind("Addresses/Address"),
        reference_publisher.iterfind("Addresses/Address"),
        strict=True,
    ):
        assert _tags(ours_address) == _tags(their_address)
        assert [c.attrib for c in ours_address] == [c.attrib for c in their_address]
    for tag in ("EMailAddress", "SupportingWebsiteUrl"):
        assert publisher.find(tag).attrib == reference_publisher.find(tag).attrib == {XSI_NIL: "true"}  # type: ignore[union-attr]
    assert manifest.findtext("Managed") == ("1" if managed else "0")
    assert manifest.findtext("Version") == "1.1.0.0"


def test_root_components_name_tables_choices_and_the_role() -> None:
    root = ET.fromstring(solution_xml(managed=True, version="1.1.0.0"))
    example = _example("test-solution-solution.xml")
    shapes = {
        c.get("type"): list(c.attrib)
        for c in example.iterfind("SolutionManifest/RootComponents/RootComponent")
    }
    components = list(root.iterfind("SolutionManifest/RootComponents/RootComponent"))
    for component in components:
        kind = component.get("type")
        assert list(component.attrib) == (shapes.get(kind, ["type", "id", "behavior"]))
        assert component.get("behavior") == "0"
    assert [c.get("schemaName") for c in components if c.get("type") == "1"] == [
        t.logical_name for t in ALL_TABLES
    ]
    assert [c.get("schemaName") for c in components if c.get("type") == "9"] == [o.name for o in OPTION_SETS]
    role = ET.fromstring(customizations_xml(managed=True)).find("Roles/Role")
    assert role is not None
    assert [c.get("id") for c in components if c.get("type") == "20"] == [role.get("id")]


def test_top_level_sections(ours: ET.Element, reference: ET.Element) -> None:
    assert set(_tags(ours)) <= set(_tags(reference))
    _in_same_order(_tags(ours), _tags(reference))


def test_tables_are_written_as_an_export_writes_a_custom_table(
    ours: ET.Element, reference: ET.Element
) -> None:
    their_entity = reference.find("Entities/Entity")
    their_info = reference.find("Entities/Entity/EntityInfo/entity")
    assert their_entity is not None
    assert their_info is not None
    for entity in ours.iterfind("Entities/Entity"):
        _in_same_order(_tags(entity), _tags(their_entity))
        assert list(entity.find("Name").attrib) == list(their_entity.find("Name").attrib)  # type: ignore[union-attr]
        info = entity.find("EntityInfo/entity")
        assert info is not None
        tags = _tags(info)
        assert set(tags) - {"EntityKeys"} <= set(_tags(their_info))
        _in_same_order(tags, _tags(their_info))
        # As the CoE Starter Kit's export places them: keys right after the columns.
        assert tags[tags.index("attributes") + 1] == "EntityKeys"
        system = {
            a.get("PhysicalName")
            for a in info.iterfind("attributes/attribute")
            if a.findtext("IsCustomField") == "0"
        }
        their_system = {
            a.get("PhysicalName")
            for a in their_info.iterfind("attributes/attribute")
            if a.findtext("IsCustomField") == "0"
        }
        their_pk = next(
            a.get("PhysicalName")
            for a in their_info.iterfind("attributes/attribute")
            if a.findtext("Type") == "primarykey"
        )
        pk = next(
            a.get("PhysicalName")
            for a in info.iterfind("attributes/attribute")
            if a.findtext("Type") == "primarykey"
        )
        assert system - {pk} == their_system - {their_pk}, "the system columns of a user-owned table"


def _reference_attributes() -> dict[str, list[ET.Element]]:
    by_type: dict[str, list[ET.Element]] = {}
    bit = _example("coe-starter-kit-bit-attribute.xml")
    for attribute in [*_example("test-solution-customizations.xml").iterfind(".//attributes/attribute"), bit]:
        by_type.setdefault(attribute.findtext("Type") or "", []).append(attribute)
    return by_type


def test_columns_are_written_as_exports_write_them(ours: ET.Element) -> None:
    references = _reference_attributes()
    generic = references["nvarchar"][0]
    for attribute in ours.iterfind(".//attributes/attribute"):
        kind = attribute.findtext("Type") or ""
        tags = _tags(attribute)
        same_type = references.get(kind, [])
        for reference in same_type or [generic]:
            _in_same_order(tags, _tags(reference))
        if same_type:
            known = set().union(*(_tags(r) for r in same_type))
            assert set(tags) <= known, f"{attribute.get('PhysicalName')}: {set(tags) - known}"
        for reference in same_type:
            assert set(_tags(reference)) - set(tags) <= NEWER_THAN_SCHEMA | {
                "IsLogical",
                "DisplayMask",
                "ImeMode",
                "AutoNumberFormat",
            }
        for option_set in attribute.iterfind("optionset"):
            their = next(r.find("optionset") for r in same_type if r.find("optionset") is not None)
            _in_same_order(_tags(option_set), _tags(their))


def test_two_option_columns_carry_their_own_yes_no_option_set(ours: ET.Element) -> None:
    their = _example("coe-starter-kit-bit-attribute.xml").find("optionset")
    assert their is not None
    bits = [a for a in ours.iterfind(".//attributes/attribute") if a.findtext("Type") == "bit"]
    assert bits
    for attribute in bits:
        option_set = attribute.find("optionset")
        assert option_set is not None
        assert option_set.get("Name", "").endswith("_" + (attribute.findtext("LogicalName") or "?"))
        assert _tags(option_set) == _tags(their)
        assert [o.get("value") for o in option_set.iterfind("options/option")] == ["1", "0"]
        assert attribute.findtext("AppDefaultValue") == "0"


def test_alternate_keys_are_written_as_an_export_writes_them(ours: ET.Element) -> None:
    their = _example("coe-starter-kit-entity-keys.xml").find("EntityKey")
    assert their is not None
    keys = list(ours.iterfind(".//EntityKeys/EntityKey"))
    assert len(keys) == sum(1 for t in ALL_TABLES if t.alternate_key)
    for key in keys:
        assert _tags(key) == _tags(their)
        assert _tags(key.find("EntityKeyAttributes")) == ["AttributeName"] * len(
            key.find("EntityKeyAttributes")
        )  # type: ignore[arg-type]


def test_relationships_are_written_as_an_export_writes_them(ours: ET.Element, reference: ET.Element) -> None:
    theirs = {r.get("Name"): r for r in reference.iterfind("EntityRelationships/EntityRelationship")}
    custom = theirs["cra0f_cra0f_leaverequest_Approver_systemuser"]
    names = [r.get("Name", "") for r in ours.iterfind("EntityRelationships/EntityRelationship")]
    assert names == sorted(names, key=str.lower), "exports sort relationships by name"
    for relationship in ours.iterfind("EntityRelationships/EntityRelationship"):
        name = relationship.get("Name", "")
        if name in {r.schema_name for r in RELATIONSHIPS}:
            assert [t for t in _tags(custom) if t not in NEWER_THAN_SCHEMA] == _tags(relationship)
            their_roles = [
                _tags(r) for r in custom.iterfind("EntityRelationshipRoles/EntityRelationshipRole")
            ]
            assert [
                _tags(r) for r in relationship.iterfind("EntityRelationshipRoles/EntityRelationshipRole")
            ] == their_roles
        else:
            prefix = name.split("_xdc_")[0]
            their = next(r for n, r in theirs.items() if n and n.startswith(prefix + "_cra0f_"))
            assert [t for t in _tags(their) if t not in NEWER_THAN_SCHEMA] == _tags(relationship), name


def test_the_role_is_written_as_an_export_writes_a_role(ours: ET.Element) -> None:
    their = _example("coe-starter-kit-role-power-platform-user-sr.xml")
    roles = list(ours.iterfind("Roles/Role"))
    assert [r.get("name") for r in roles] == [CONNECTOR_USER_ROLE.name]
    role = roles[0]
    assert list(role.attrib) == ["id", "name"]
    assert set(role.attrib) <= set(their.attrib)
    assert _tags(role) == _tags(their)
    for privilege in role.iterfind("RolePrivileges/RolePrivilege"):
        assert list(privilege.attrib) == list(their.find("RolePrivileges/RolePrivilege").attrib)  # type: ignore[union-attr]


def test_global_choices_are_written_as_an_export_writes_them(ours: ET.Element, reference: ET.Element) -> None:
    their = reference.find("optionsets/optionset")
    assert their is not None
    their_option = their.find("options/option")
    assert their_option is not None
    for option_set in ours.iterfind("optionsets/optionset"):
        assert list(option_set.attrib) == list(their.attrib)
        assert _tags(option_set) == _tags(their)
        for option in option_set.iterfind("options/option"):
            assert list(option.attrib) == list(their_option.attrib)
            assert _tags(option) == _tags(their_option)
