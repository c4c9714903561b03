"""Our tables in Dynamics 365 (Dataverse), defined once.

This module is the single source of truth for our Dataverse solution: the mapping reads column names
from it, the Dataverse client reads entity sets, alternate keys, navigation properties and the
privileges the setup checks, and `bot.solution` generates the importable solution package
(`solution.xml`, `customizations.xml`) from it. The Dataverse sandbox never imports it: it learns our
tables by importing that package, as a real environment does.

Names follow Dataverse's rules (DP = https://learn.microsoft.com/power-apps/developer/data-platform/):
- a *schema name* keeps its casing (`xdc_ChartOfAccounts`, `xdc_ConnectorId`); the *logical name* is its
  lower-case form and is what `$select`, `$filter` and row bodies use (DP:entity-metadata);
- a lookup is written through its *single-valued navigation property*, whose name is the lookup
  column's schema name, case-sensitive (`xdc_ConnectorId@odata.bind`), and read back as
  `_xdc_connectorid_value` (DP:webapi/associate-disassociate-entities-using-web-api);
- choice values of a custom option set start at the publisher's option-value prefix × 10,000
  (DP:/maker/data-platform/create-solution#solution-publisher: prefix 10000 → 100,000,000);
- privileges are named `prv{Verb}{EntitySchemaName}` (DP:security-privileges) and have a depth.
"""

from __future__ import annotations

from bot.sync.table_choices import (
    OPTION_SETS,
    OPTION_SETS_BY_ENUM,
    ConnectorStatus,
    RecordState,
    RunOutcomeChoice,
)
from bot.sync.table_model import (
    FIRST_VERSION,
    Column,
    ColumnType,
    Depth,
    OptionSet,
    Ownership,
    Privilege,
    Publisher,
    Relationship,
    RequiredLevel,
    RolePrivilege,
    SecurityRole,
    Table,
    privilege_name,
)
from bot.sync.table_model import bool_column as _b
from bot.sync.table_model import choice_column as _choice
from bot.sync.table_model import datetime_column as _dt
from bot.sync.table_model import key_column as _pk
from bot.sync.table_model import rate_column as _rate
from bot.sync.table_model import since as _since
from bot.sync.table_model import string_column as _s

# The model and the choices live in their own modules; every name stays importable from here.
__all__ = [
    "FIRST_VERSION", "OPTION_SETS", "OPTION_SETS_BY_ENUM", "Column", "ColumnType", "ConnectorStatus", "Depth",
    "OptionSet", "Ownership", "Privilege", "Publisher", "RecordState", "Relationship", "RequiredLevel",
    "RolePrivilege", "RunOutcomeChoice", "SecurityRole", "Table", "privilege_name",
]  # fmt: skip

PREFIX = "xdc"
SOLUTION_UNIQUE_NAME = "XeroDynamicsConnector"
SOLUTION_FRIENDLY_NAME = "Xero Dynamics Connector"
SECURITY_ROLE_NAME = "Xero Connector User"

PUBLISHER = Publisher(
    unique_name="xerodynamicsconnector",
    friendly_name="Xero Dynamics Connector",
    prefix=PREFIX,
    option_value_prefix=10000,
    description="Publisher of the Xero Dynamics Connector Teams bot.",
)


def _lookup_connector() -> Column:
    return Column(
        "xdc_connectorid",
        ColumnType.LOOKUP,
        "Connector",
        required=True,
        target="xdc_connector",
        schema_name="xdc_ConnectorId",
        description="The Xero connection this row belongs to.",
    )


def _state() -> Column:
    return _choice("xdc_recordstate", "xdc_RecordState", "Present in Xero", RecordState)


# Tracking categories came with solution 1.1.0.0 (the project's 1.1.0): older installs upgrade to them.
TRACKING_VERSION = "1.1.0.0"


CONNECTOR = Table(
    logical_name="xdc_connector",
    schema_name="xdc_Connector",
    entity_set="xdc_connectors",
    display_name="Xero Connector",
    plural_name="Xero Connectors",
    description="One Xero organisation connected to this environment by the Teams bot.",
    primary_key="xdc_connectorid",
    primary_name="xdc_name",
    columns=(
        _pk("xdc_connectorid", "xdc_ConnectorId", "Connector"),
        _s("xdc_name", "xdc_Name", "Connection name", 100, required=True),
        _s("xdc_connectionid", "xdc_ConnectionId", "Connection id", 64, required=True),
        _s("xdc_xeroorganisationname", "xdc_XeroOrganisationName", "Xero organisation", 255),
        _s("xdc_xerotenantid", "xdc_XeroTenantId", "Xero tenant id", 64, required=True),
        _s("xdc_plan", "xdc_Plan", "Subscription plan", 50),
        _s("xdc_timezone", "xdc_Timezone", "Timezone", 64),
        _choice("xdc_status", "xdc_Status", "Status", ConnectorStatus),
        _dt("xdc_lastrunutc", "xdc_LastRunUtc", "Last run (UTC)"),
        _dt("xdc_nextrunutc", "xdc_NextRunUtc", "Next run (UTC)"),
        _choice("xdc_lastoutcome", "xdc_LastOutcome", "Last outcome", RunOutcomeChoice),
        _s("xdc_lastoutcomedetail", "xdc_LastOutcomeDetail", "Last outcome detail", 2000),
    ),
    alternate_key=("xdc_connectionid",),
    alternate_key_name="xdc_connector_connectionid",
    alternate_key_display="Connection id",
)

CONNECTOR_SETTINGS = Table(
    logical_name="xdc_connectorsettings",
    schema_name="xdc_ConnectorSettings",
    entity_set="xdc_connectorsettingses",
    display_name="Xero Connector Settings",
    plural_name="Xero Connector Settings",
    description="What a connector syncs, its plan, timezone and notifications.",
    primary_key="xdc_connectorsettingsid",
    primary_name="xdc_name",
    columns=(
        _pk("xdc_connectorsettingsid", "xdc_ConnectorSettingsId", "Connector settings"),
        _s("xdc_name", "xdc_Name", "Name", 100, required=True),
        _lookup_connector(),
        _s("xdc_plan", "xdc_Plan", "Subscription plan", 50),
        _s("xdc_timezone", "xdc_Timezone", "Timezone", 64),
        _s("xdc_notifymode", "xdc_NotifyMode", "Notify about", 32),
        _b("xdc_isdefault", "xdc_IsDefault", "Is this the default connection"),
        _b("xdc_syncaccounts", "xdc_SyncAccounts", "Sync chart of accounts"),
        _b("xdc_synctaxrates", "xdc_SyncTaxRates", "Sync tax types"),
        _b("xdc_syncbrandingthemes", "xdc_SyncBrandingThemes", "Sync branding themes"),
        *_since(
            TRACKING_VERSION,
            _b("xdc_synctrackingcategories", "xdc_SyncTrackingCategories", "Sync tracking categories"),
        ),
    ),
    alternate_key=("xdc_connectorid",),
    alternate_key_name="xdc_connectorsettings_connector",
    alternate_key_display="Connector",
    connector_lookup="xdc_connectorid",
)

CHART_OF_ACCOUNTS = Table(
    logical_name="xdc_chartofaccounts",
    schema_name="xdc_ChartOfAccounts",
    entity_set="xdc_chartofaccountses",
    display_name="Chart of Accounts",
    plural_name="Charts of Accounts",
    description="Xero accounts, copied by the connector.",
    primary_key="xdc_chartofaccountsid",
    primary_name="xdc_name",
    columns=(
        _pk("xdc_chartofaccountsid", "xdc_ChartOfAccountsId", "Account"),
        _lookup_connector(),
        _s("xdc_xeroaccountid", "xdc_XeroAccountId", "Xero AccountID", 64, required=True),
        _s("xdc_code", "xdc_Code", "Code", 10),
        _s("xdc_name", "xdc_Name", "Name", 150, required=True),
        _s("xdc_type", "xdc_Type", "Type", 32),
        _s("xdc_class", "xdc_Class", "Class", 32),
        _s("xdc_status", "xdc_Status", "Xero status", 32),
        _s("xdc_taxtype", "xdc_TaxType", "Tax type", 64),
        Column("xdc_description", ColumnType.MEMO, "Description", max_length=4000, schema_name="xdc_Description"),
        _s("xdc_reportingcode", "xdc_ReportingCode", "Reporting code", 64),
        _s("xdc_reportingcodename", "xdc_ReportingCodeName", "Reporting code name", 255),
        _s("xdc_systemaccount", "xdc_SystemAccount", "System account", 64),
        _s("xdc_bankaccountnumber", "xdc_BankAccountNumber", "Bank account number", 64),
        _s("xdc_bankaccounttype", "xdc_BankAccountType", "Bank account type", 32),
        _s("xdc_currencycode", "xdc_CurrencyCode", "Currency", 8),
        _b("xdc_enablepaymentstoaccount", "xdc_EnablePaymentsToAccount", "Enable payments to account"),
        _b("xdc_showinexpenseclaims", "xdc_ShowInExpenseClaims", "Show in expense claims"),
        _dt("xdc_xeroupdatedutc", "xdc_XeroUpdatedUtc", "Updated in Xero (UTC)"),
        _state(),
    ),
    alternate_key=("xdc_connectorid", "xdc_xeroaccountid"),
    alternate_key_name="xdc_chartofaccounts_connector_accountid",
    alternate_key_display="Connector and Xero AccountID",
    xero_key="AccountID",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
)

TAX_TYPE = Table(
    logical_name="xdc_taxtype",
    schema_name="xdc_TaxType",
    entity_set="xdc_taxtypes",
    display_name="Tax Type",
    plural_name="Tax Types",
    description="Xero tax rates, copied by the connector.",
    primary_key="xdc_taxtypeid",
    primary_name="xdc_name",
    columns=(
        _pk("xdc_taxtypeid", "xdc_TaxTypeId", "Tax type"),
        _lookup_connector(),
        _s("xdc_xerotaxtype", "xdc_XeroTaxType", "Xero TaxType", 64, required=True),
        _s("xdc_name", "xdc_Name", "Name", 150, required=True),
        _s("xdc_status", "xdc_Status", "Xero status", 32),
        _s("xdc_reporttaxtype", "xdc_ReportTaxType", "Report tax type", 64),
        _rate("xdc_effectiverate", "xdc_EffectiveRate", "Effective rate (%)"),
        _rate("xdc_displayrate", "xdc_DisplayRate", "Display rate (%)"),
        Column("xdc_components", ColumnType.MEMO, "Components", max_length=4000, schema_name="xdc_Components"),
        _b("xdc_canapplytoassets", "xdc_CanApplyToAssets", "Applies to assets"),
        _b("xdc_canapplytoequity", "xdc_CanApplyToEquity", "Applies to equity"),
        _b("xdc_canapplytoexpenses", "xdc_CanApplyToExpenses", "Applies to expenses"),
        _b("xdc_canapplytoliabilities", "xdc_CanApplyToLiabilities", "Applies to liabilities"),
        _b("xdc_canapplytorevenue", "xdc_CanApplyToRevenue", "Applies to revenue"),
        _state(),
    ),
    alternate_key=("xdc_connectorid", "xdc_xerotaxtype"),
    alternate_key_name="xdc_taxtype_connector_taxtype",
    alternate_key_display="Connector and Xero TaxType",
    xero_key="TaxType",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
)

BRANDING_THEME = Table(
    logical_name="xdc_brandingtheme",
    schema_name="xdc_BrandingTheme",
    entity_set="xdc_brandingthemes",
    display_name="Branding Theme",
    plural_name="Branding Themes",
    description="Xero invoice branding themes, copied by the connector.",
    primary_key="xdc_brandingthemeid",
    primary_name="xdc_name",
    columns=(
        _pk("xdc_brandingthemeid", "xdc_BrandingThemeId", "Branding theme"),
        _lookup_connector(),
        _s("xdc_xerobrandingthemeid", "xdc_XeroBrandingThemeId", "Xero BrandingThemeID", 64, required=True),
        _s("xdc_name", "xdc_Name", "Name", 150, required=True),
        Column("xdc_sortorder", ColumnType.INT, "Sort order", schema_name="xdc_SortOrder", min_value=-2147483648, max_value=2147483647),
        _s("xdc_type", "xdc_Type", "Type", 32),
        _s("xdc_logourl", "xdc_LogoUrl", "Logo URL", 500),
        _dt("xdc_xerocreatedutc", "xdc_XeroCreatedUtc", "Created in Xero (UTC)"),
        _state(),
    ),
    alternate_key=("xdc_connectorid", "xdc_xerobrandingthemeid"),
    alternate_key_name="xdc_brandingtheme_connector_themeid",
    alternate_key_display="Connector and Xero BrandingThemeID",
    xero_key="BrandingThemeID",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
)

TRACKING_CATEGORY = Table(
    logical_name="xdc_trackingcategory",
    schema_name="xdc_TrackingCategory",
    entity_set="xdc_trackingcategories",
    display_name="Tracking Category",
    plural_name="Tracking Categories",
    description="Xero tracking categories (such as Region or Department), copied by the connector.",
    primary_key="xdc_trackingcategoryid",
    primary_name="xdc_name",
    columns=_since(
        TRACKING_VERSION,
        _pk("xdc_trackingcategoryid", "xdc_TrackingCategoryId", "Tracking category"),
        _lookup_connector(),
        _s("xdc_xerotrackingcategoryid", "xdc_XeroTrackingCategoryId", "Xero TrackingCategoryID", 64, True),
        _s("xdc_name", "xdc_Name", "Name", 100, required=True),
        _s("xdc_status", "xdc_Status", "Xero status", 32),
        _state(),
    ),
    alternate_key=("xdc_connectorid", "xdc_xerotrackingcategoryid"),
    alternate_key_name="xdc_trackingcategory_connector_categoryid",
    alternate_key_display="Connector and Xero TrackingCategoryID",
    xero_key="TrackingCategoryID",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
    introduced=TRACKING_VERSION,
)

TRACKING_OPTION = Table(
    logical_name="xdc_trackingoption",
    schema_name="xdc_TrackingOption",
    entity_set="xdc_trackingoptions",
    display_name="Tracking Option",
    plural_name="Tracking Options",
    description="The options of Xero tracking categories (such as North or Sales), copied by the connector.",
    primary_key="xdc_trackingoptionid",
    primary_name="xdc_name",
    columns=_since(
        TRACKING_VERSION,
        _pk("xdc_trackingoptionid", "xdc_TrackingOptionId", "Tracking option"),
        _lookup_connector(),
        _s("xdc_xerotrackingoptionid", "xdc_XeroTrackingOptionId", "Xero TrackingOptionID", 64, True),
        _s("xdc_name", "xdc_Name", "Name", 100, required=True),
        _s("xdc_status", "xdc_Status", "Xero status", 32),
        Column(
            "xdc_trackingcategoryid",
            ColumnType.LOOKUP,
            "Tracking category",
            target="xdc_trackingcategory",
            schema_name="xdc_TrackingCategoryId",
            description="The tracking category this option belongs to.",
            # The connector lookup already deletes options with their connector; a second cascading path
            # to the same rows is not needed, and categories are never deleted by us (only deactivated).
            cascade_delete="RemoveLink",
        ),
        _state(),
    ),
    alternate_key=("xdc_connectorid", "xdc_xerotrackingoptionid"),
    alternate_key_name="xdc_trackingoption_connector_optionid",
    alternate_key_display="Connector and Xero TrackingOptionID",
    xero_key="TrackingOptionID",
    connector_lookup="xdc_connectorid",
    state_column="xdc_recordstate",
    introduced=TRACKING_VERSION,
)

ALL_TABLES: tuple[Table, ...] = (
    CONNECTOR,
    CONNECTOR_SETTINGS,
    CHART_OF_ACCOUNTS,
    TAX_TYPE,
    BRANDING_THEME,
    TRACKING_CATEGORY,
    TRACKING_OPTION,
)
# Categories before options: an option's row binds its category's row, which must exist first.
SYNCED_TABLES: tuple[Table, ...] = (
    CHART_OF_ACCOUNTS,
    TAX_TYPE,
    BRANDING_THEME,
    TRACKING_CATEGORY,
    TRACKING_OPTION,
)
TABLES_BY_SET = {t.entity_set: t for t in ALL_TABLES}
TABLES_BY_NAME = {t.logical_name: t for t in ALL_TABLES}
RELATIONSHIPS: tuple[Relationship, ...] = tuple(r for t in ALL_TABLES for r in t.relationships)


# What a connector user needs on each of our tables, and at which depth. A connection is operated by
# everyone in its chat (reconnected by a colleague, its runs write rows that an earlier sign-in created),
# so reading, writing and attaching rows must reach every row in the organization (Global). Creating only
# ever creates the user's own rows, so the user level is enough for that. We never delete: rows that
# leave Xero are deactivated (xdc_recordstate), and a connector's rows go with it by cascade.
REQUIRED_DEPTH: tuple[tuple[Privilege, Depth], ...] = (
    (Privilege.CREATE, Depth.BASIC),
    (Privilege.READ, Depth.GLOBAL),
    (Privilege.WRITE, Depth.GLOBAL),
    (Privilege.APPEND, Depth.GLOBAL),
    (Privilege.APPEND_TO, Depth.GLOBAL),
)
REQUIRED_PRIVILEGES: tuple[Privilege, ...] = tuple(p for p, _ in REQUIRED_DEPTH)


def _connector_user_role() -> SecurityRole:
    # The role grants Global depth for each privilege (more than Create needs): a role's grant is the
    # ceiling, and a user who only has it should never hit a depth error on our tables.
    granted = tuple(
        RolePrivilege(privilege_name(p, t), Depth.GLOBAL, p, t.logical_name) for t in ALL_TABLES for p, _ in REQUIRED_DEPTH
    )
    return SecurityRole(
        name=SECURITY_ROLE_NAME,
        role_privileges=granted,
        description="Can set up and run the Xero connector from Microsoft Teams.",
        privileges=tuple(rp.name for rp in granted),
    )


CONNECTOR_USER_ROLE = _connector_user_role()
# What the setup check requires: (privilege name, minimum depth, privilege, table), role order.
REQUIRED_ROLE_PRIVILEGES: tuple[tuple[str, Depth, Privilege, Table], ...] = tuple(
    (privilege_name(p, t), d, p, t) for t in ALL_TABLES for p, d in REQUIRED_DEPTH
)

# Importing a solution (ImportSolution / ImportSolutionAsync): "ImportSolution message privileges"
# (https://learn.microsoft.com/previous-versions/dynamicscrm-2016/developers-guide/gg327891(v=crm.8)) lists
# what the message needs, "depending on the entity types in the request". These are the ones every import
# of ours touches (tables, columns, relationships, choices, a role); System Administrator and System
# Customizer hold them all. The check only decides whether to offer "Install it for me": the import
# itself still reports Dataverse's own reason if something else is missing.
IMPORT_PRIVILEGES: tuple[str, ...] = (
    "prvCreateCustomization",
    "prvReadCustomization",
    "prvWriteCustomization",
    "prvReadSolution",
    "prvWriteSolution",
    "prvReadRole",
)
