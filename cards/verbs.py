"""Every action the bot handles from a card: its `data.verb`.

A card action carries `data: {"verb": <CardVerb>, ...hidden fields}`; Teams merges the card's inputs
into the same object. `cards.submits.parse_submit` turns that object into one typed model per verb.
"""

from __future__ import annotations

from enum import StrEnum


class CardVerb(StrEnum):
    # Setup checklist.
    SETUP_START = "setup_start"
    SETUP_CANCEL = "setup_cancel"
    XERO_RETRY = "xero_retry"
    XERO_PICK_ORG = "xero_pick_org"
    VERIFY_CODE = "verify_code"
    SOLUTION_CHECK_AGAIN = "solution_check_again"
    SOLUTION_INSTALL = "solution_install"  # "Install it for me" / "Upgrade it for me"
    SOLUTION_CONTINUE = "solution_continue"  # keep the older, compatible version for now
    DYNAMICS_RETRY = "dynamics_retry"
    DYNAMICS_PICK_ENV = "dynamics_pick_env"
    # Settings form.
    SETTINGS_SUBMIT = "settings_submit"
    SETTINGS_CANCEL = "settings_cancel"
    # Disconnect confirmation.
    CONFIRM_DISCONNECT = "confirm_disconnect"
    CANCEL_DISCONNECT = "cancel_disconnect"
    # "Which connection?" card.
    PICK_CONNECTION = "pick_connection"
    # Status, run result, history and alert cards.
    RUN_NOW = "run_now"
    OPEN_SETTINGS = "open_settings"
    SHOW_STATUS = "show_status"
    SHOW_HISTORY = "show_history"
    RESUME_SYNC = "resume_sync"
    RECONNECT_XERO = "reconnect_xero"
    RECONNECT_DYNAMICS = "reconnect_dynamics"
    SOLUTION_UPGRADE = "solution_upgrade"  # status card: upgrade our solution in the connection's environment
    # Error message card: run the command again.
    RETRY_COMMAND = "retry_command"
