"""`customizations.xml`: our tables, their keys and relationships, the global choices and the
connector user's security role, generated from bot.sync.tables.

The layout is a real export's (root `ImportExportXml`, then Entities, Roles, Workflows,
FieldSecurityProfiles, Templates, EntityMaps, EntityRelationships, OrganizationSettings, optionsets,
Languages; see specs/dataverse/examples/) and validates against Microsoft's
`CustomizationsSolution.xsd` (tests/unit/test_solution_schema.py).
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

from bot.solution.attributes import table_attributes
from bot.solution.xmltree import LANGUAGE, XSI_NS, descriptions, el, labels, render
from bot.sync.tables import (
    ALL_TABLES,
    CONNECTOR_USER_ROLE,
    OPTION_SETS,
    TABLES_BY_NAME,
    OptionSet,
    Relationship,
    SecurityRole,
    Table,
)

# Our component ids must be the same in every build (an upgrade matches components by id), so they
# are name-based UUIDs under a namespace of our own.
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:xero-dynamics-teams-connector:dataverse-solution")


def component_id(kind: str, name: str) -> str:
    """`{xxxxxxxx-...}`: a stable id for one of our components, e.g. `component_id("role", name)`."""
    return "{" + str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{name}")) + "}"


def role_id(role: SecurityRole = CONNECTOR_USER_ROLE) -> str:
    return component_id("role", role.name)


def _entity_info(table: Table, *, managed: bool) -> ET.Element:
    # Element order as a real export writes an entity (its XSD is an xs:all, so order is free).
    keys = None
    if table.alternate_key:
        keys = el("EntityKeys", children=[_entity_key(table, managed=managed)])
    return el(
        "entity",
        attrs={"Name": table.schema},
        children=[
            labels("LocalizedNames", "LocalizedName", table.display_name),
            labels(
                "LocalizedCollectionNames", "LocalizedCollectionName", table.plural_name or table.display_name
            ),
            descriptions(table.description),
            table_attributes(table, managed=managed),
            keys,
            ("EntitySetName", table.entity_set),
            ("IsDuplicateCheckSupported", True),
            ("IsBusinessProcessEnabled", False),
            ("IsRequiredOffline", False),
            ("IsInteractionCentricEnabled", False),
            ("IsCollaboration", False),
            ("AutoRouteToOwnerQueue", False),
            ("IsConnectionsEnabled", False),
            ("IsDocumentManagementEnabled", False),
            ("AutoCreateAccessTeams", False),
            ("IsOneNoteIntegrationEnabled", False),
            ("IsKnowledgeManagementEnabled", False),
            ("IsSLAEnabled", False),
            ("IsDocumentRecommendationsEnabled", False),
            ("IsBPFEntity", False),
            ("OwnershipTypeMask", table.ownership.value),
            ("IsAuditEnabled", False),
            ("IsActivity", False),
            ("ActivityTypeMask", ""),
            ("IsActivityParty", False),
            ("IsReplicated", False),
            ("IsReplicationUserFiltered", False),
            ("IsMailMergeEnabled", True),
            ("IsVisibleInMobile", False),
            ("IsVisibleInMobileClient", False),
            ("IsReadOnlyInMobileClient", False),
            ("IsOfflineInMobileClient", False),
            ("DaysSinceRecordLastModified", 0),
            ("MobileOfflineFilters", ""),
            ("IsMapiGridEnabled", True),
            ("IsReadingPaneEnabled", True),
            ("IsQuickCreateEnabled", False),
            ("SyncToExternalSearchIndex", False),
            ("IntroducedVersion", table.introduced),
            # Tables stay customizable even when managed: a customer may add forms, views and columns
            # of their own without touching what the connector relies on (locked per column).
            ("IsCustomizable", True),
            ("IsRenameable", True),
            ("IsMappable", True),
            ("CanModifyAuditSettings", True),
            ("CanModifyMobileVisibility", True),
            ("CanModifyMobileClientVisibility", True),
            ("CanModifyMobileClientReadOnly", True),
            ("CanModifyMobileClientOffline", True),
            ("CanModifyConnectionSettings", True),
            ("CanModifyDuplicateDetectionSettings", True),
            ("CanModifyMailMergeSettings", True),
            ("CanModifyQueueSettings", True),
            ("CanCreateAttributes", True),
            ("CanCreateForms", True),
            ("CanCreateCharts", True),
            ("CanCreateViews", True),
            ("CanModifyAdditionalSettings", True),
            ("CanEnableSyncToExternalSearchIndex", True),
            ("EnforceStateTransitions", False),
            ("CanChangeHierarchicalRelationship", True),
            ("EntityHelpUrlEnabled", False),
            ("ChangeTrackingEnabled", False),
            ("CanChangeTrackingBeEnabled", True),
            ("IsEnabledForExternalChannels", False),
        ],
    )


def _entity_key(table: Table, *, managed: bool) -> ET.Element:
    """An alternate key: its schema name, the key columns by logical name, its display name."""
    return el(
        "EntityKey",
        children=[
            ("Name", table.alternate_key_name),
            ("LogicalName", table.alternate_key_name.lower()),
            ("IntroducedVersion", table.introduced),
            ("IsCustomizable", not managed),
            el("EntityKeyAttributes", children=[("AttributeName", name) for name in table.alternate_key]),
            labels("displaynames", "displayname", table.alternate_key_display or table.alternate_key_name),
        ],
    )


def entity(table: Table, *, managed: bool) -> ET.Element:
    name_attrs = {"LocalizedName": table.display_name, "OriginalName": table.display_name}
    return el(
        "Entity",
        children=[
            el("Name", table.schema, attrs=name_attrs),
            el("EntityInfo", children=[_entity_info(table, managed=managed)]),
        ],
    )


def relationship(rel: Relationship, *, managed: bool) -> ET.Element:
    """A 1:N relationship created by one of our lookups. Its two navigation properties: the lookup's
    schema name on the referencing (many) side, role type 1 (`xdc_ConnectorId@odata.bind`), and the
    relationship's schema name as the collection on the referenced (one) side, role type 0."""
    referencing = TABLES_BY_NAME[rel.referencing]
    referenced = TABLES_BY_NAME[rel.referenced]
    lookup = referencing.column(rel.lookup)
    return el(
        "EntityRelationship",
        attrs={"Name": rel.schema_name},
        children=[
            ("EntityRelationshipType", "OneToMany"),
            ("IsCustomizable", not managed),
            ("IntroducedVersion", lookup.introduced),
            ("IsHierarchical", False),
            ("ReferencingEntityName", referencing.schema),
            ("ReferencedEntityName", referenced.schema),
            ("CascadeAssign", "NoCascade"),
            ("CascadeDelete", rel.cascade_delete),
            ("CascadeReparent", "NoCascade"),
            ("CascadeShare", "NoCascade"),
            ("CascadeUnshare", "NoCascade"),
            ("CascadeRollupView", "NoCascade"),
            ("IsValidForAdvancedFind", True),
            ("ReferencingAttributeName", lookup.schema),
            el("RelationshipDescription", children=[descriptions(lookup.description)]),
            el(
                "EntityRelationshipRoles",
                children=[
                    el(
                        "EntityRelationshipRole",
                        children=[
                            ("NavPaneDisplayOption", "UseCollectionName"),
                            ("NavPaneArea", "Details"),
                            ("NavPaneOrder", 10000),
                            ("NavigationPropertyName", lookup.navigation_property),
                            ("RelationshipRoleType", 1),
                        ],
                    ),
                    el(
                        "EntityRelationshipRole",
                        children=[("NavigationPropertyName", rel.schema_name), ("RelationshipRoleType", 0)],
                    ),
                ],
            ),
        ],
    )


def _system_relationship(
    name: str, table: Table, referenced: str, attribute: str, description: str
) -> ET.Element:
    """The relationships Dataverse creates with a user-owned table (owner, business unit, team, user,
    created/modified by): an export writes them beside the table's own."""
    return el(
        "EntityRelationship",
        attrs={"Name": name},
        children=[
            ("EntityRelationshipType", "OneToMany"),
            ("IsCustomizable", True),
            ("IntroducedVersion", "1.0"),
            ("IsHierarchical", False),
            ("ReferencingEntityName", table.schema),
            ("ReferencedEntityName", referenced),
            ("CascadeAssign", "NoCascade"),
            ("CascadeDelete", "NoCascade"),
            ("CascadeReparent", "NoCascade"),
            ("CascadeShare", "NoCascade"),
            ("CascadeUnshare", "NoCascade"),
            ("ReferencingAttributeName", attribute),
            el("RelationshipDescription", children=[descriptions(description)]),
        ],
    )


def system_relationships(table: Table) -> list[ET.Element]:
    t = table.logical_name
    rels = [
        _system_relationship(
            f"lk_{t}_createdby",
            table,
            "SystemUser",
            "CreatedBy",
            "Unique identifier of the user who created the record.",
        ),
        _system_relationship(
            f"lk_{t}_modifiedby",
            table,
            "SystemUser",
            "ModifiedBy",
            "Unique identifier of the user who modified the record.",
        ),
    ]
    if table.ownership.value == "UserOwned":
        rels += [
            _system_relationship(
                f"business_unit_{t}",
                table,
                "BusinessUnit",
                "OwningBusinessUnit",
                "Unique identifier for the business unit that owns the record",
            ),
            _system_relationship(f"owner_{t}", table, "Owner", "OwnerId", "Owner Id"),
            _system_relationship(
                f"team_{t}",
                table,
                "Team",
                "OwningTeam",
                "Unique identifier for the team that owns the record.",
            ),
            _system_relationship(
                f"user_{t}",
                table,
                "SystemUser",
                "OwningUser",
                "Unique identifier for the user that owns the record.",
            ),
        ]
    return rels


def optionset(option_set: OptionSet, *, managed: bool) -> ET.Element:
    """A global choice with its values (publisher prefix 10000 -> 100000000, 100000001, ...)."""
    options = [
        el(
            "option",
            attrs={"value": str(int(value)), "ExternalValue": ""},
            children=[labels("labels", "label", label), descriptions("")],
        )
        for value, label in option_set.labels
    ]
    return el(
        "optionset",
        attrs={"Name": option_set.name, "localizedName": option_set.display_name},
        children=[
            ("OptionSetType", "picklist"),
            ("IsGlobal", True),
            ("IntroducedVersion", "1.0.0.0"),
            ("IsCustomizable", not managed),
            ("ExternalTypeName", ""),
            labels("displaynames", "displayname", option_set.display_name),
            el("options", children=options),
        ],
    )


def role(security_role: SecurityRole) -> ET.Element:
    privileges = [
        el("RolePrivilege", attrs={"name": rp.name, "level": rp.depth.value})
        for rp in security_role.role_privileges
    ]
    return el(
        "Role",
        attrs={"id": role_id(security_role), "name": security_role.name},
        # A customer may extend the role (e.g. with privileges on their own tables): it stays customizable.
        children=[("IsCustomizable", True), el("RolePrivileges", children=privileges)],
    )


def customizations_element(*, managed: bool) -> ET.Element:
    relationships: list[ET.Element] = []
    for table in ALL_TABLES:
        relationships += [relationship(r, managed=managed) for r in table.relationships]
        relationships += system_relationships(table)
    relationships.sort(key=lambda r: r.get("Name", "").lower())  # exports sort them by name
    return el(
        "ImportExportXml",
        attrs={"xmlns:xsi": XSI_NS},
        children=[
            el("Entities", children=[entity(t, managed=managed) for t in ALL_TABLES]),
            el("Roles", children=[role(CONNECTOR_USER_ROLE)]),
            el("Workflows"),
            el("FieldSecurityProfiles"),
            el("Templates"),
            el("EntityMaps"),
            el("EntityRelationships", children=relationships),
            el("OrganizationSettings"),
            el("optionsets", children=[optionset(o, managed=managed) for o in OPTION_SETS]),
            el("CustomControls"),
            el("EntityDataProviders"),
            el("Languages", children=[("Language", LANGUAGE)]),
        ],
    )


def customizations_xml(*, managed: bool) -> bytes:
    return render(customizations_element(managed=managed))
