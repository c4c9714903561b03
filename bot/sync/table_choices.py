"""The global choices (option sets) our tables use, with their values and labels.

Values start at the publisher's option-value prefix × 10,000 (prefix 10000 → 100,000,000):
https://learn.microsoft.com/power-apps/maker/data-platform/create-solution#solution-publisher. Re-exported by
`bot.sync.tables`; import from there.
"""

from __future__ import annotations

from enum import IntEnum

from bot.sync.table_model import OptionSet


class ConnectorStatus(IntEnum):
    ACTIVE = 100000000
    PAUSED = 100000001
    NEEDS_RECONNECTION = 100000002
    DISCONNECTED = 100000003


class RunOutcomeChoice(IntEnum):
    NONE = 100000000
    SUCCEEDED = 100000001
    PARTIAL = 100000002
    FAILED = 100000003


class RecordState(IntEnum):
    """Whether the row is still present in Xero: removed rows are deactivated, never deleted."""

    ACTIVE = 100000000
    INACTIVE = 100000001


OPTION_SETS: tuple[OptionSet, ...] = (
    OptionSet(
        "xdc_connectorstatus",
        "Connector Status",
        ConnectorStatus,
        (
            (ConnectorStatus.ACTIVE, "Active"),
            (ConnectorStatus.PAUSED, "Paused"),
            (ConnectorStatus.NEEDS_RECONNECTION, "Needs reconnection"),
            (ConnectorStatus.DISCONNECTED, "Disconnected"),
        ),
    ),
    OptionSet(
        "xdc_runoutcome",
        "Run Outcome",
        RunOutcomeChoice,
        (
            (RunOutcomeChoice.NONE, "Not run yet"),
            (RunOutcomeChoice.SUCCEEDED, "Succeeded"),
            (RunOutcomeChoice.PARTIAL, "Partly succeeded"),
            (RunOutcomeChoice.FAILED, "Failed"),
        ),
    ),
    OptionSet(
        "xdc_recordstate",
        "Present in Xero",
        RecordState,
        ((RecordState.ACTIVE, "Present in Xero"), (RecordState.INACTIVE, "Removed from Xero")),
    ),
)
OPTION_SETS_BY_ENUM = {o.options: o for o in OPTION_SETS}
