"""`solution.xml`: the solution manifest (name, version, managed flag, publisher, root components).

Microsoft publishes no schema for it; element order and attributes follow a real export
(specs/dataverse/examples/test-solution-solution.xml, `generatedBy="CrmLive"`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bot.solution.customizations import role_id
from bot.solution.xmltree import LANGUAGE, XSI_NS, el, labels, render
from bot.sync.tables import (
    ALL_TABLES,
    CONNECTOR_USER_ROLE,
    OPTION_SETS,
    PUBLISHER,
    SOLUTION_FRIENDLY_NAME,
    SOLUTION_UNIQUE_NAME,
)

# The platform version our package claims to come from (a real 9.2 export's). An import checks that
# the target is not older than the package's ImportExportXml version.
PLATFORM_VERSION = "9.2.22113.178"
SOLUTION_DESCRIPTION = "Tables, choices and the security role of the Xero Dynamics Connector Teams bot."

# Root component types (solutioncomponent componenttype, DP:reference/entities/solutioncomponent).
ENTITY, OPTION_SET, ROLE = 1, 9, 20
_ADDRESS_FIELDS = (
    "AddressTypeCode",
    "City",
    "County",
    "Country",
    "Fax",
    "FreightTermsCode",
    "ImportSequenceNumber",
    "Latitude",
    "Line1",
    "Line2",
    "Line3",
    "Longitude",
    "Name",
    "PostalCode",
    "PostOfficeBox",
    "PrimaryContactName",
    "ShippingMethodCode",
    "StateOrProvince",
    "Telephone1",
    "Telephone2",
    "Telephone3",
    "TimeZoneRuleVersionNumber",
    "UPSZone",
    "UTCOffset",
    "UTCConversionTimeZoneCode",
)
_NIL = {"xsi:nil": "true"}


def _nil(tag: str) -> ET.Element:
    return el(tag, "", attrs=_NIL)  # `<Tag xsi:nil="true"></Tag>`, as exports write it


def _address(number: int) -> ET.Element:
    return el("Address", children=[("AddressNumber", number), *(_nil(f) for f in _ADDRESS_FIELDS)])


def _descriptions(text: str) -> ET.Element:
    return labels("Descriptions", "Description", text) if text else el("Descriptions")


def _publisher() -> ET.Element:
    return el(
        "Publisher",
        children=[
            ("UniqueName", PUBLISHER.unique_name),
            labels("LocalizedNames", "LocalizedName", PUBLISHER.friendly_name),
            _descriptions(PUBLISHER.description),
            _nil("EMailAddress"),
            _nil("SupportingWebsiteUrl"),
            ("CustomizationPrefix", PUBLISHER.prefix),
            ("CustomizationOptionValuePrefix", PUBLISHER.option_value_prefix),
            el("Addresses", children=[_address(1), _address(2)]),
        ],
    )


def root_components() -> list[ET.Element]:
    """Tables (by logical name), global choices (by name), the role (by id); behavior 0 = include
    the component with all its subcomponents (columns, keys, relationships)."""
    tables = [
        el("RootComponent", attrs={"type": str(ENTITY), "schemaName": t.logical_name, "behavior": "0"})
        for t in ALL_TABLES
    ]
    choices = [
        el("RootComponent", attrs={"type": str(OPTION_SET), "schemaName": o.name, "behavior": "0"})
        for o in OPTION_SETS
    ]
    role = el("RootComponent", attrs={"type": str(ROLE), "id": role_id(CONNECTOR_USER_ROLE), "behavior": "0"})
    return [*tables, *choices, role]


def solution_element(*, managed: bool, version: str) -> ET.Element:
    attrs = {
        "version": PLATFORM_VERSION,
        "SolutionPackageVersion": "9.2",
        "languagecode": str(LANGUAGE),
        "generatedBy": "CrmLive",
        "xmlns:xsi": XSI_NS,
    }
    return el(
        "ImportExportXml",
        attrs=attrs,
        children=[
            el(
                "SolutionManifest",
                children=[
                    ("UniqueName", SOLUTION_UNIQUE_NAME),
                    labels("LocalizedNames", "LocalizedName", SOLUTION_FRIENDLY_NAME),
                    _descriptions(SOLUTION_DESCRIPTION),
                    ("Version", version),
                    ("Managed", managed),
                    _publisher(),
                    el("RootComponents", children=root_components()),
                    el("MissingDependencies"),
                ],
            )
        ],
    )


def solution_xml(*, managed: bool, version: str) -> bytes:
    return render(solution_element(managed=managed, version=version))
