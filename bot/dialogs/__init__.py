"""The conversational setup in Teams: connect Xero, connect Dynamics 365, name, plan, timezone.

Public API: `SetupFeature` (wiring: see `bot.dialogs.feature`), its dependencies `SetupDeps`, its
knobs `SetupOptions`, the `FirstRunScheduler` protocol it needs from the sync service, and `Provider`
(for `reconnect`).
"""

from bot.dialogs.deps import FirstRunScheduler, SetupDeps, SetupOptions
from bot.dialogs.feature import SetupFeature
from bot.dialogs.model import Provider

__all__ = ["FirstRunScheduler", "Provider", "SetupDeps", "SetupFeature", "SetupOptions"]
