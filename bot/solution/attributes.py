"""The `<attribute>` elements of one table: our columns (from bot.sync.tables) and the system
columns Dataverse adds to every custom table, written as an export writes them.

Element names, order and values follow a real export (specs/dataverse/examples/
test-solution-customizations.xml), restricted to the elements `CustomizationsSolution.xsd` defines:
newer exports also write `AutoNumberFormat`, `IsSearchable`, `IsFilterable`, `IsRetrievable` and
`IsLocalizable`, which that schema rejects and which default sensibly on import, so we leave them out.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace

from bot.solution.xmltree import Child, descriptions, el, labels, number
from bot.sync.tables import OPTION_SETS_BY_ENUM, Column, ColumnType, Ownership, Table

CUSTOM_MASK = "ValidForAdvancedFind|ValidForForm|ValidForGrid"
PRIMARY_NAME_MASK = "PrimaryName|ValidForAdvancedFind|ValidForForm|ValidForGrid|RequiredForForm"
PRIMARY_KEY_MASK = "ValidForAdvancedFind|RequiredForGrid"
# What the column types of tables.py are called in customizations.xml (`CrmDataType` in the XSD).
CRM_TYPES: dict[ColumnType, str] = {
    ColumnType.STRING: "nvarchar",
    ColumnType.MEMO: "ntext",
    ColumnType.INT: "int",
    ColumnType.DECIMAL: "decimal",
    ColumnType.BOOL: "bit",
    ColumnType.DATETIME: "datetime",
    ColumnType.CHOICE: "picklist",
    ColumnType.LOOKUP: "lookup",
    ColumnType.GUID: "primarykey",
}
INT_MIN, INT_MAX = -2147483648, 2147483647
USER_LOCAL = 1  # DateTimeBehavior UserLocal: stored in UTC, which is what our *_utc columns hold


@dataclass(frozen=True)
class Attr:
    physical: str  # schema name, casing kept
    type: str
    label: str
    description: str = ""
    required: str = "none"
    mask: str | None = CUSTOM_MASK
    ime: str | None = "auto"
    create: bool = True
    update: bool = True
    custom: bool = False
    audit: bool = False
    logical: bool = False
    customizable: bool = True
    can_modify_required: bool = True
    introduced: str = "1.0"
    extra: tuple[Child, ...] = ()


def attribute(a: Attr) -> ET.Element:
    return el(
        "attribute",
        attrs={"PhysicalName": a.physical},
        children=[
            ("Type", a.type),
            ("Name", a.physical.lower()),
            ("LogicalName", a.physical.lower()),
            ("RequiredLevel", a.required),
            ("DisplayMask", a.mask) if a.mask is not None else None,
            ("ImeMode", a.ime) if a.ime is not None else None,
            ("ValidForUpdateApi", a.update),
            ("ValidForReadApi", True),
            ("ValidForCreateApi", a.create),
            ("IsCustomField", a.custom),
            ("IsAuditEnabled", a.audit),
            ("IsLogical", True) if a.logical else None,
            ("IsSecured", False),
            ("IntroducedVersion", a.introduced),
            ("IsCustomizable", a.customizable),
            ("IsRenameable", True),
            ("CanModifySearchSettings", True),
            ("CanModifyRequirementLevelSettings", a.can_modify_required),
            ("CanModifyAdditionalSettings", True),
            ("SourceType", 0),
            ("IsGlobalFilterEnabled", False),
            ("IsSortableEnabled", False),
            ("CanModifyGlobalFilterSettings", True),
            ("CanModifyIsSortableSettings", True),
            ("IsDataSourceSecret", False),
            *a.extra,
            labels("displaynames", "displayname", a.label),
            descriptions(a.description),
        ],
    )


def bit_optionset(name: str, label: str, description: str, *, customizable: bool) -> ET.Element:
    """A two-option column's own option set (`{table}_{column}`): 1 = Yes, 0 = No."""
    return el(
        "optionset",
        attrs={"Name": name},
        children=[
            ("OptionSetType", "bit"),
            ("IntroducedVersion", "1.0.0.0"),
            ("IsCustomizable", customizable),
            ("ExternalTypeName", ""),
            labels("displaynames", "displayname", label),
            descriptions(description),
            el("options", children=[_option(1, "Yes"), _option(0, "No")]),
        ],
    )


def _option(value: int, label: str) -> ET.Element:
    return el(
        "option",
        attrs={"value": str(value), "ExternalValue": ""},
        children=[labels("labels", "label", label)],
    )


def column_attr(table: Table, col: Column, *, managed: bool) -> Attr:
    """One of our columns. A managed build locks our columns (IsCustomizable 0): the connector reads
    and writes them by name and type, so a customer must not change them; an unmanaged build (our own
    development environments) leaves them editable."""
    base = Attr(
        col.schema,
        CRM_TYPES[col.type],
        col.label,
        col.description,
        required=col.required_level.value,
        custom=True,
        audit=True,
        customizable=not managed,
        introduced=col.introduced,
    )
    match col.type:
        case ColumnType.GUID:
            description = col.description or "Unique identifier for entity instances"
            return replace(
                base,
                description=description,
                custom=False,
                audit=False,
                mask=PRIMARY_KEY_MASK,
                update=False,
                can_modify_required=False,
            )
        case ColumnType.STRING:
            length = col.max_length or 100
            mask = PRIMARY_NAME_MASK if col.name == table.primary_name else CUSTOM_MASK
            return replace(
                base, mask=mask, extra=(("Format", "text"), ("MaxLength", length), ("Length", 2 * length))
            )
        case ColumnType.MEMO:
            return replace(base, extra=(("Format", "textarea"), ("MaxLength", col.max_length or 2000)))
        case ColumnType.INT:
            low = INT_MIN if col.min_value is None else col.min_value
            high = INT_MAX if col.max_value is None else col.max_value
            return replace(
                base,
                ime="disabled",
                extra=(("Format", "none"), ("MinValue", number(low)), ("MaxValue", number(high))),
            )
        case ColumnType.DECIMAL:
            # Exports write a decimal's precision as <Accuracy> (the XSD has no <Precision> element).
            low = -100000000000 if col.min_value is None else col.min_value
            high = 100000000000 if col.max_value is None else col.max_value
            accuracy = 2 if col.precision is None else col.precision
            return replace(
                base,
                ime="disabled",
                extra=(("MinValue", number(low)), ("MaxValue", number(high)), ("Accuracy", accuracy)),
            )
        case ColumnType.BOOL:
            options = bit_optionset(
                f"{table.logical_name}_{col.name}", col.label, col.description, customizable=not managed
            )
            return replace(base, extra=(("AppDefaultValue", 0), options))
        case ColumnType.DATETIME:
            return replace(
                base,
                extra=(("Format", "datetime"), ("CanChangeDateTimeBehavior", True), ("Behavior", USER_LOCAL)),
            )
        case ColumnType.CHOICE:
            if col.choices is None:
                raise ValueError(f"{table.logical_name}.{col.name} is a choice without an option set")
            return replace(
                base,
                extra=(("AppDefaultValue", -1), ("OptionSetName", OPTION_SETS_BY_ENUM[col.choices].name)),
            )
        case ColumnType.LOOKUP:
            # A custom lookup's target is named by its relationship (ReferencedEntityName), not here:
            # exports write an empty <LookupTypes /> because custom tables' type codes differ per org.
            return replace(base, audit=False, ime=None, extra=(("LookupStyle", "single"), el("LookupTypes")))
    raise ValueError(f"unsupported column type {col.type}")


_LOOKUP_EXTRA: tuple[Child, ...] = (("LookupStyle", "single"), ("LookupTypes", None))


def _lookup(physical: str, label: str, description: str) -> Attr:
    return Attr(physical, "lookup", label, description, create=False, update=False, extra=_LOOKUP_EXTRA)


def _stamp(physical: str, label: str, description: str) -> Attr:
    extra: tuple[Child, ...] = (
        ("Format", "datetime"),
        ("CanChangeDateTimeBehavior", False),
        ("Behavior", USER_LOCAL),
    )
    return Attr(
        physical, "datetime", label, description, ime="inactive", create=False, update=False, extra=extra
    )


def _whole(physical: str, label: str, description: str, low: int) -> Attr:
    return Attr(
        physical,
        "int",
        label,
        description,
        mask=None,
        extra=(("Format", ""), ("MinValue", low), ("MaxValue", INT_MAX)),
    )


def _state_attrs(table: Table) -> list[Attr]:
    name = table.display_name
    state = el(
        "optionset",
        attrs={"Name": f"{table.logical_name}_statecode"},
        children=[
            ("OptionSetType", "state"),
            ("IntroducedVersion", "1.0"),
            ("IsCustomizable", True),
            labels("displaynames", "displayname", "Status"),
            descriptions(f"Status of the {name}"),
            el("states", children=[_state(0, 1, "Active"), _state(1, 2, "Inactive")]),
        ],
    )
    status = el(
        "optionset",
        attrs={"Name": f"{table.logical_name}_statuscode"},
        children=[
            ("OptionSetType", "status"),
            ("IntroducedVersion", "1.0"),
            ("IsCustomizable", True),
            labels("displaynames", "displayname", "Status Reason"),
            descriptions(f"Reason for the status of the {name}"),
            el("statuses", children=[_status(1, 0, "Active"), _status(2, 1, "Inactive")]),
        ],
    )
    return [
        Attr(
            "statecode",
            "state",
            "Status",
            f"Status of the {name}",
            required="systemrequired",
            create=False,
            audit=True,
            extra=(state,),
        ),
        Attr(
            "statuscode",
            "status",
            "Status Reason",
            f"Reason for the status of the {name}",
            audit=True,
            extra=(status,),
        ),
    ]


def _state(value: int, default_status: int, label: str) -> ET.Element:
    attrs = {"value": str(value), "defaultstatus": str(default_status), "invariantname": label}
    return el("state", attrs=attrs, children=[labels("labels", "label", label)])


def _status(value: int, state: int, label: str) -> ET.Element:
    return el(
        "status",
        attrs={"value": str(value), "state": str(state)},
        children=[labels("labels", "label", label)],
    )


def system_attrs(table: Table) -> list[Attr]:
    """The columns Dataverse creates with every custom table (and an export carries): audit stamps,
    ownership, state and status, import and time-zone bookkeeping."""
    attrs = [
        _lookup("CreatedBy", "Created By", "Unique identifier of the user who created the record."),
        _stamp("CreatedOn", "Created On", "Date and time when the record was created."),
        _lookup(
            "CreatedOnBehalfBy",
            "Created By (Delegate)",
            "Unique identifier of the delegate user who created the record.",
        ),
        replace(
            _whole(
                "ImportSequenceNumber",
                "Import Sequence Number",
                "Sequence number of the import that created this record.",
                INT_MIN,
            ),
            mask="ValidForAdvancedFind",
            ime="disabled",
            update=False,
            audit=True,
        ),
        _lookup("ModifiedBy", "Modified By", "Unique identifier of the user who modified the record."),
        _stamp("ModifiedOn", "Modified On", "Date and time when the record was modified."),
        _lookup(
            "ModifiedOnBehalfBy",
            "Modified By (Delegate)",
            "Unique identifier of the delegate user who modified the record.",
        ),
        replace(
            _stamp("OverriddenCreatedOn", "Record Created On", "Date and time that the record was migrated."),
            mask="ValidForAdvancedFind|ValidForGrid",
            create=True,
            audit=True,
            extra=(("Format", "date"), ("CanChangeDateTimeBehavior", False), ("Behavior", USER_LOCAL)),
        ),
        *_state_attrs(table),
        _whole("TimeZoneRuleVersionNumber", "Time Zone Rule Version Number", "For internal use only.", -1),
        _whole(
            "UTCConversionTimeZoneCode",
            "UTC Conversion Time Zone Code",
            "Time zone code that was in use when the record was created.",
            -1,
        ),
    ]
    if table.ownership is Ownership.USER:
        nobody = "00000000-0000-0000-0000-000000000000"
        owner_types = el(
            "LookupTypes",
            children=[
                el("LookupType", "8", attrs={"id": nobody}),  # systemuser
                el("LookupType", "9", attrs={"id": nobody}),  # team
            ],
        )
        attrs += [
            Attr(
                "OwnerId",
                "owner",
                "Owner",
                "Owner Id",
                required="systemrequired",
                mask=CUSTOM_MASK + "|RequiredForForm",
                audit=True,
                extra=(("LookupStyle", "single"), owner_types),
            ),
            _lookup(
                "OwningBusinessUnit",
                "Owning Business Unit",
                "Unique identifier for the business unit that owns the record",
            ),
            replace(
                _lookup("OwningTeam", "Owning Team", "Unique identifier for the team that owns the record."),
                mask=None,
                logical=True,
            ),
            replace(
                _lookup("OwningUser", "Owning User", "Unique identifier for the user that owns the record."),
                mask=None,
                logical=True,
            ),
        ]
    else:
        attrs.append(
            replace(
                _lookup("OrganizationId", "Organization Id", "Unique identifier for the organization"),
                mask=None,
            )
        )
    return attrs


def table_attributes(table: Table, *, managed: bool) -> ET.Element:
    """`<attributes>`, sorted by logical name as exports sort them."""
    ours = [column_attr(table, c, managed=managed) for c in table.columns]
    every = sorted([*ours, *system_attrs(table)], key=lambda a: a.physical.lower())
    return el("attributes", children=[attribute(a) for a in every])
