"""The settings card of a new connection, and the confirm that creates it.

Everything the card sends is validated again here (`cards.submits`), plus what only the server can
know: the name must be unique among the Connector rows of the chosen environment. Errors go back onto
the same card, next to the field. Confirm is idempotent: the Dynamics rows are written by alternate
key and the connection is created or updated under the setup's connection id, so a retry after a
failure writes the same records again rather than new ones.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from bot.dialogs.kit import SetupKit
from bot.dialogs.model import DynamicsChoice, SetupState, XeroChoice
from bot.errors import ValidationFailed
from bot.storage.base import Connection, NotifyMode
from bot.sync.dataverse import DataverseClient
from bot.sync.plans import get_plan
from bot.sync.records import upsert_connector_record, upsert_settings_record
from bot.sync.tables import CONNECTOR
from bot.teams.escape import md_outside
from bot.teams.turn import Turn
from cards import MessageCardData, MessageTone, render_message_card
from cards.settings import INPUT_IDS
from cards.submits import SettingsSubmit

log = logging.getLogger(__name__)


def _text(value: Any, limit: int = 400) -> str:
    return value[:limit] if isinstance(value, str) else ""


class SettingsStep:
    def __init__(self, kit: SetupKit) -> None:
        self._kit = kit

    async def show(self, turn: Turn, state: SetupState) -> SetupState:
        """Send the settings card (once) below the checklist."""
        await self._kit.show(turn, state)
        card_id = await turn.send_card(self._kit.view.settings_card(state))
        return state.but(settings_card_id=card_id)

    async def redisplay(self, turn: Turn, state: SetupState, raw: dict[str, Any], error: ValidationFailed) -> None:
        """The same card again, with what was typed and a message next to each field at fault."""
        notify = _text(raw.get("notify_mode"))
        shown = {field: message for field, message in error.field_errors.items() if field in INPUT_IDS}
        card = self._kit.view.settings_card(
            state,
            name=_text(raw.get("connection_name")),
            plan=_text(raw.get("plan"), 50),
            timezone=_text(raw.get("timezone"), 64) if not error.field_errors.get("timezone") else "",
            notify_mode=NotifyMode(notify) if notify in set(NotifyMode) else NotifyMode.EVERY_RUN,
            field_errors=shown,
            # A problem with a hidden field (a tampered or stale card) has no place next to an input.
            form_error="" if shown and len(shown) == len(error.field_errors) else str(error),
        )
        await self._update_or_send(turn, state, card)

    async def confirm(self, turn: Turn, state: SetupState, submit: SettingsSubmit) -> Connection:
        """Create the records in Dynamics and the connection (`start_first_run` then starts it).

        Raises ValidationFailed (the name is taken) or ConnectorError (Dynamics or the store failed)."""
        xero, env = state.xero, state.dynamics
        if xero is None or env is None:
            raise ValidationFailed("This setup is not ready for its settings yet.")
        dv = self._client(state, env)
        others = await self._other_connectors(dv, state.connection_id)
        if any(name.casefold() == submit.connection_name.casefold() for name in others):
            raise ValidationFailed(
                "That name is taken.",
                {"connection_name": f"{env.env_name} already has a connection called '{submit.connection_name}'."},
            )
        connection = self._connection(state, xero, env, submit)
        row_id = await upsert_connector_record(dv, connection)
        settings_id = await upsert_settings_record(dv, connection, row_id, is_default=not others)
        connection = connection.model_copy(
            update={"dataverse_connector_row_id": row_id, "dataverse_settings_row_id": settings_id}
        )
        store = self._kit.deps.store
        existing = await store.get_connection(connection.id)
        if existing is None:
            saved = await store.create_connection(connection)
        else:
            saved = await store.save_connection(connection.model_copy(update={"version": existing.version}))
        log.info("connection %s created by setup %s", saved.id, state.setup_id)
        return saved

    async def start_first_run(self, turn: Turn, connection: Connection) -> None:
        """Say the connection is created, then start its first run, in that order.

        The run reports through the proactive queue, independently of this turn: scheduled first, its
        card could reach the chat before this message (it did in group chats). Scheduled in `finally`,
        so a message Teams refuses does not leave the new connection without its first run."""
        try:
            await turn.send_text(
                f"Connection '{md_outside(connection.name)}' created; the first sync is running now, "
                "I'll post the result here."
            )
        finally:
            await self._kit.deps.scheduler.schedule_first_run(connection.id)

    async def closed(self, turn: Turn, state: SetupState, text: str) -> None:
        """Replace the settings card once it is no longer live, so its buttons cannot be pressed."""
        if state.settings_card_id:
            await self._kit.update(turn, state, state.settings_card_id, _notice(text))

    async def _update_or_send(self, turn: Turn, state: SetupState, card: dict[str, Any]) -> None:
        if state.settings_card_id:
            await self._kit.update(turn, state, state.settings_card_id, card)
        else:
            await turn.send_card(card)

    def _client(self, state: SetupState, env: DynamicsChoice) -> DataverseClient:
        token = functools.partial(self._kit.deps.dynamics_auth.access_token, state.tokens_id, env.url)
        return DataverseClient(self._kit.deps.http, env.api_url, token)

    @staticmethod
    async def _other_connectors(dv: DataverseClient, connection_id: str) -> list[str]:
        """Names of the environment's Connector rows other than this setup's own (a retried confirm)."""
        rows = await dv.find_rows(CONNECTOR, "", ["xdc_name", "xdc_connectionid"])
        return [
            str(row.get("xdc_name") or "")
            for row in rows
            if str(row.get("xdc_connectionid") or "") != connection_id
        ]

    @staticmethod
    def _connection(state: SetupState, xero: XeroChoice, env: DynamicsChoice, submit: SettingsSubmit) -> Connection:
        get_plan(submit.plan)  # validated already; a KeyError here would be a bug worth surfacing
        return Connection(
            id=state.connection_id,
            name=submit.connection_name,
            teams_tenant_id=state.tenant_id,
            conversation_key=state.conversation_key,
            created_by_aad_id=state.owner_id,
            created_by_name=state.owner_name,
            thread_activity_id=state.thread_id,
            xero_tenant_id=xero.tenant_id,
            xero_connection_id=xero.xero_connection_id,
            xero_org_name=xero.org_name,
            xero_timezone=xero.timezone,
            dataverse_env_id=env.env_id,
            dataverse_env_name=env.env_name,
            dataverse_env_url=env.url,
            dataverse_api_url=env.api_url,
            dataverse_user_timezone=env.user_timezone,
            plan=submit.plan,
            timezone=submit.timezone,
            notify_mode=submit.notify_mode,
        )


def _notice(text: str) -> dict[str, Any]:
    return render_message_card(MessageCardData(title=text, tone=MessageTone.INFO))
