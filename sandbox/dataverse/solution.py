"""Reading a solution package (.zip) the way Dataverse's ImportSolution reads it.

A solution file holds `solution.xml` (the manifest: unique name, version, managed, publisher),
`customizations.xml` (root `ImportExportXml`, schema CustomizationsSolution.xsd:
https://learn.microsoft.com/power-apps/developer/data-platform/customization-solutions-file-schema) and
`[Content_Types].xml` (https://learn.microsoft.com/power-platform/alm/solution-concepts-alm). We read what the
sandbox models (tables, columns, option sets, 1:N relationships, alternate keys, security roles) and
tolerate everything else (forms, views, ribbons, site maps, workflows, elements newer than the XSD), as
real exports carry elements the published schema does not know (see ../shared/specs/dataverse/README.md).

Parsing never touches an environment; `importer.py` applies the result.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree

from sandbox.dataverse.errors import DataverseError
from sandbox.dataverse.model import ColumnType, Depth, RequiredLevel
from sandbox.dataverse.schema import ColumnSpec

# ImportCustomizationsBadZipFileError, -2147188640 (https://learn.microsoft.com/power-apps/developer/data-platform/reference/web-service-error-codes)
BAD_ZIP_CODE = "0x80048060"
BAD_ZIP_MESSAGE = (
    "The solution file is invalid. The compressed file must contain the following files at its root: "
    "solution.xml, customizations.xml, and [Content_Types].xml. Customization files exported from previous "
    "versions of Microsoft Dynamics 365 are not supported."
)
REQUIRED_FILES = ("solution.xml", "customizations.xml", "[Content_Types].xml")

# customizations.xml `<Type>` (CrmDataType in the XSD) -> what the sandbox stores. Types we do not model
# (virtual, image, file, bigint, multiselect, ...) are skipped, as a client of ours never writes them.
_TYPES: dict[str, ColumnType] = {
    "nvarchar": ColumnType.STRING,
    "char": ColumnType.STRING,
    "ntext": ColumnType.MEMO,
    "memo": ColumnType.MEMO,
    "int": ColumnType.INT,
    "smallint": ColumnType.INT,
    "tinyint": ColumnType.INT,
    "decimal": ColumnType.DECIMAL,
    "money": ColumnType.DECIMAL,
    "float": ColumnType.DECIMAL,
    "bit": ColumnType.BOOL,
    "datetime": ColumnType.DATETIME,
    "picklist": ColumnType.CHOICE,
    "state": ColumnType.CHOICE,
    "status": ColumnType.CHOICE,
    "lookup": ColumnType.LOOKUP,
    "owner": ColumnType.LOOKUP,
    "customer": ColumnType.LOOKUP,
    "primarykey": ColumnType.GUID,
    "uniqueidentifier": ColumnType.GUID,
}


class SolutionFileError(DataverseError):
    """The package cannot be read; nothing was imported."""


def bad_zip(detail: str = "") -> SolutionFileError:
    return SolutionFileError(400, BAD_ZIP_CODE, BAD_ZIP_MESSAGE + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class Publisher:
    unique_name: str
    friendly_name: str
    prefix: str
    option_value_prefix: int


@dataclass(frozen=True)
class KeyDef:
    logical_name: str
    attributes: tuple[str, ...]  # logical names
    display: str


@dataclass(frozen=True)
class EntityDef:
    schema_name: str
    logical_name: str
    entity_set: str
    display: str
    user_owned: bool
    primary_key: str
    primary_name: str
    columns: tuple[ColumnSpec, ...]
    keys: tuple[KeyDef, ...]
    option_set_refs: dict[str, str] = field(default_factory=dict)  # column -> global option set name


@dataclass(frozen=True)
class RelationshipDef:
    name: str
    referencing_entity: str  # logical names
    referenced_entity: str
    referencing_attribute: str
    cascade_delete: str


@dataclass(frozen=True)
class RoleDef:
    name: str
    role_id: str
    privileges: tuple[tuple[str, Depth], ...]


@dataclass(frozen=True)
class SolutionPackage:
    unique_name: str
    friendly_name: str
    version: str
    managed: bool
    publisher: Publisher
    entities: tuple[EntityDef, ...]
    option_sets: dict[str, tuple[int, ...]]  # global option sets: name -> values
    relationships: tuple[RelationshipDef, ...]
    roles: tuple[RoleDef, ...]
    referenced_entities: tuple[str, ...]  # `unmodified` system tables the package only points at


def version_tuple(version: str) -> tuple[int, ...]:
    """`major.minor[.build[.revision]]`, compared numerically (https://learn.microsoft.com/power-platform/alm/update-solutions-alm)."""
    try:
        return tuple(int(part) for part in version.strip().split("."))
    except ValueError:
        raise bad_zip(f"the solution version '{version}' is not a version number") from None


def read_package(data: bytes) -> SolutionPackage:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        missing = [name for name in REQUIRED_FILES if name not in names]
        if missing:
            raise bad_zip(f"missing {', '.join(missing)}")
        manifest = _xml(archive.read("solution.xml"), "solution.xml")
        customizations = _xml(archive.read("customizations.xml"), "customizations.xml")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, KeyError) as exc:
        raise bad_zip(str(exc)) from None
    if customizations.tag != "ImportExportXml":
        raise bad_zip("customizations.xml has no ImportExportXml root")
    return _package(manifest, customizations)


def _xml(raw: bytes, name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(raw)
    except ElementTree.ParseError as exc:
        raise bad_zip(f"{name}: {exc}") from None


def _text(node: ElementTree.Element | None, path: str, default: str = "") -> str:
    if node is None:
        return default
    found = node.find(path)
    return (found.text or "").strip() if found is not None and found.text is not None else default


def _label(node: ElementTree.Element | None, path: str) -> str:
    found = node.find(path) if node is not None else None
    return found.get("description", "") if found is not None else ""


def _package(manifest_root: ElementTree.Element, root: ElementTree.Element) -> SolutionPackage:
    manifest = manifest_root.find("SolutionManifest")
    if manifest is None:
        raise bad_zip("solution.xml has no SolutionManifest")
    unique_name = _text(manifest, "UniqueName")
    version = _text(manifest, "Version")
    if not unique_name or not version:
        raise bad_zip("solution.xml needs UniqueName and Version")
    version_tuple(version)
    pub = manifest.find("Publisher")
    publisher = Publisher(
        unique_name=_text(pub, "UniqueName"),
        friendly_name=_label(pub, "LocalizedNames/LocalizedName"),
        prefix=_text(pub, "CustomizationPrefix"),
        option_value_prefix=int(_text(pub, "CustomizationOptionValuePrefix", "0") or 0),
    )
    option_sets = {
        node.get("Name", ""): _option_values(node) for node in root.findall("optionsets/optionset")
    }
    entities: list[EntityDef] = []
    referenced: list[str] = []
    for entity in root.findall("Entities/Entity"):
        info = entity.find("EntityInfo/entity")
        if info is None:
            continue
        if info.get("unmodified") == "1" or not _text(info, "EntitySetName"):
            referenced.append(info.get("Name", "").lower())  # a system table the package only points at
            continue
        entities.append(_entity(entity, info))
    relationships = tuple(
        RelationshipDef(
            name=node.get("Name", ""),
            referencing_entity=_text(node, "ReferencingEntityName").lower(),
            referenced_entity=_text(node, "ReferencedEntityName").lower(),
            referencing_attribute=_text(node, "ReferencingAttributeName").lower(),
            cascade_delete=_text(node, "CascadeDelete", "RemoveLink"),
        )
        for node in root.findall("EntityRelationships/EntityRelationship")
        if _text(node, "EntityRelationshipType", "OneToMany") == "OneToMany"
    )
    roles = tuple(
        RoleDef(
            name=node.get("name", ""),
            role_id=(node.get("id", "") or "").strip("{}").lower(),
            privileges=tuple(
                (p.get("name", ""), Depth(p.get("level", "Global"))) for p in node.findall("RolePrivileges/RolePrivilege")
            ),
        )
        for node in root.findall("Roles/Role")
    )
    return SolutionPackage(
        unique_name=unique_name,
        friendly_name=_label(manifest, "LocalizedNames/LocalizedName") or unique_name,
        version=version,
        managed=_text(manifest, "Managed", "0") in ("1", "2", "true"),
        publisher=publisher,
        entities=tuple(entities),
        option_sets=option_sets,
        relationships=relationships,
        roles=roles,
        referenced_entities=tuple(referenced),
    )


def _option_values(node: ElementTree.Element) -> tuple[int, ...]:
    values = [o.get("value") for o in node.findall("options/option")]
    values += [o.get("value") for o in node.findall("states/state")]
    values += [o.get("value") for o in node.findall("statuses/status")]
    return tuple(int(v) for v in values if v is not None)


def _entity(entity: ElementTree.Element, info: ElementTree.Element) -> EntityDef:
    schema_name = _text(entity, "Name") or info.get("Name", "")
    columns: list[ColumnSpec] = []
    refs: dict[str, str] = {}
    primary_key = primary_name = ""
    for attribute in info.findall("attributes/attribute"):
        raw_type = _text(attribute, "Type").lower()
        kind = _TYPES.get(raw_type)
        logical = (_text(attribute, "LogicalName") or _text(attribute, "Name")).lower()
        if kind is None or not logical:
            continue
        if raw_type == "primarykey":
            primary_key = logical
        if "PrimaryName" in _text(attribute, "DisplayMask").split("|"):
            primary_name = logical
        choices: tuple[int, ...] | None = None
        if kind == ColumnType.CHOICE:
            inline = attribute.find("optionset")
            if inline is not None:
                choices = _option_values(inline)
            elif _text(attribute, "OptionSetName"):
                refs[logical] = _text(attribute, "OptionSetName")
        max_length = _text(attribute, "MaxLength")
        precision = _text(attribute, "Accuracy") if kind == ColumnType.DECIMAL else ""
        level = _text(attribute, "RequiredLevel", "none").lower()
        writable = "1" in (_text(attribute, "ValidForCreateApi", "1"), _text(attribute, "ValidForUpdateApi", "1"))
        columns.append(ColumnSpec(
            name=logical,
            type=kind,
            label=_label(attribute, "displaynames/displayname"),
            max_length=int(max_length) if max_length and kind in (ColumnType.STRING, ColumnType.MEMO) else None,
            choices=choices,
            schema_name=attribute.get("PhysicalName", logical),
            precision=int(precision) if precision else (2 if kind == ColumnType.DECIMAL else None),
            required_level=RequiredLevel(level) if level in RequiredLevel._value2member_map_ else RequiredLevel.NONE,
            min_value=_number(_text(attribute, "MinValue")),
            max_value=_number(_text(attribute, "MaxValue")),
            writable=writable,
        ))
    keys = tuple(
        KeyDef(
            logical_name=(_text(key, "LogicalName") or _text(key, "Name")).lower(),
            attributes=tuple((a.text or "").strip().lower() for a in key.findall("EntityKeyAttributes/AttributeName")),
            display=_label(key, "displaynames/displayname"),
        )
        for key in info.findall("EntityKeys/EntityKey")
    )
    return EntityDef(
        schema_name=schema_name,
        logical_name=schema_name.lower(),
        entity_set=_text(info, "EntitySetName"),
        display=_label(info, "LocalizedNames/LocalizedName"),
        user_owned=_text(info, "OwnershipTypeMask", "UserOwned") != "OrgOwned",
        primary_key=primary_key or f"{schema_name.lower()}id",
        primary_name=primary_name,
        columns=tuple(columns),
        keys=keys,
        option_set_refs=refs,
    )


def _number(text: str) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
