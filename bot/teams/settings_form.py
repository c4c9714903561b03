"""`settings` of an existing connection: the pre-filled card, and what a Save does.

A Save is validated again on the server (`cards.submits.SettingsSubmit`, shared with the setup), plus
what only the server knows: the name must be unique among the connections of this conversation and of
the same Dynamics 365 environment. Errors go back onto the same card, next to their field. A valid Save

1. updates the connection in our store (the source of truth; a lost race is re-applied on the latest),
   and its schedule when the plan changed;
2. replaces the form with a confirmation and tells the conversation who changed what
   ("Plan changed from Standard to Premium by Alice Anders");
3. then, in the background, writes the Settings record and the Connector row in Dynamics 365, and says
   so in the conversation if Dynamics could not be reached (the store already holds the change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.errors import ConnectorError, ValidationFailed
from bot.storage.base import Connection, ConnectionStatus, Store, utcnow
from bot.storage.helpers import update_connection
from bot.sync.plans import PLANS_BY_ID
from bot.sync.ports import DataverseFactory
from bot.sync.records import (
    clear_other_defaults,
    update_connector_status,
    upsert_connector_record,
    upsert_settings_record,
)
from bot.sync.tables import CONNECTOR_SETTINGS
from bot.teams.authz import Authorizer, Denied, Permission, Requester
from bot.teams.background import BackgroundTasks
from bot.teams.escape import md_outside
from bot.teams.proactive import ProactiveSender
from bot.teams.runcards import thread_of
from bot.teams.turn import Turn
from cards import MessageCardData, MessageTone, SettingsCardData, render_message_card, render_settings_card
from cards.elements import md_escape
from cards.problem_words import error_words
from cards.settings import DEFAULT_SWITCH, NOTIFY_TITLES, SYNC_SWITCHES
from cards.submits import SettingsCancelSubmit, SettingsSubmit, parse_submit

log = logging.getLogger(__name__)


class _Echo(BaseModel):
    """What was typed, to show it again next to the errors (never trusted beyond that)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    connection_id: str = ""
    connection_name: str = ""
    plan: str = ""
    timezone: str = ""


def _plan_name(plan_id: str) -> str:
    plan = PLANS_BY_ID.get(plan_id)
    return plan.name if plan else plan_id


def _environment(connection: Connection) -> str:
    return connection.dataverse_env_name or "this Dynamics 365 environment"


def describe_changes(before: Connection, submit: SettingsSubmit, by: str) -> list[str]:
    """One sentence per changed setting, naming who changed it."""
    changes: list[str] = []
    for field, title in SYNC_SWITCHES:
        wanted = getattr(submit, field)
        if wanted is not None and wanted != getattr(before, field):
            state = "on" if wanted else "off (its rows in Dynamics 365 stay as they are)"
            changes.append(f"{title.split(' and ')[0]} switched {state} by {by}")
    if submit.is_default and not before.is_default:
        changes.append(f"Made the default connection for {_environment(before)} by {by}")
    if submit.connection_name != before.name:
        changes.append(f"Name changed from “{before.name}” to “{submit.connection_name}” by {by}")
    if submit.plan != before.plan:
        changes.append(f"Plan changed from {_plan_name(before.plan)} to {_plan_name(submit.plan)} by {by}")
    if submit.timezone != before.timezone:
        changes.append(f"Timezone changed from {before.timezone} to {submit.timezone} by {by}")
    if submit.notify_mode != before.notify_mode:
        changes.append(
            f"Notifications changed from “{NOTIFY_TITLES[before.notify_mode]}” to "
            f"“{NOTIFY_TITLES[submit.notify_mode]}” by {by}"
        )
    return changes


class SettingsForm:
    def __init__(
        self,
        store: Store,
        sender: ProactiveSender,
        tasks: BackgroundTasks,
        authorizer: Authorizer,
        dataverse_factory: DataverseFactory | None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._sender = sender
        self._tasks = tasks
        self._authz = authorizer
        self._dataverse_factory = dataverse_factory
        self._clock = clock

    async def show(self, turn: Turn, connection: Connection) -> None:
        connection = await self._with_default(connection)
        await turn.send_card(
            render_settings_card(SettingsCardData.from_connection(connection, now=self._clock()))
        )

    async def on_card(self, turn: Turn, value: dict[str, Any]) -> None:
        """Save or Cancel on a connection's settings card (the setup handles cards naming a setup_id)."""
        requester = Requester.from_turn(turn)
        try:
            submit = parse_submit(value)
        except ValidationFailed as exc:
            await self._invalid(turn, requester, value, exc)
            return
        if not isinstance(submit, SettingsSubmit | SettingsCancelSubmit) or submit.connection_id is None:
            await turn.send_text("This form is out of date. Type **settings** to get a fresh one.")
            return
        try:
            connection = await self._authz.require(
                await self._store.get_connection(submit.connection_id), requester, Permission.MANAGE
            )
        except Denied as denied:
            await turn.send_text(str(denied))
            return
        if isinstance(submit, SettingsCancelSubmit):
            await self._replace(
                turn, _notice(MessageTone.INFO, f"Settings of {connection.name} unchanged", "")
            )
            return
        await self._save(turn, requester, connection, submit)

    async def _save(
        self, turn: Turn, requester: Requester, connection: Connection, submit: SettingsSubmit
    ) -> None:
        clash = await self._name_clash(connection, submit.connection_name)
        if clash:
            error = ValidationFailed(clash, {"connection_name": clash})
            await self._redisplay(turn, connection, submit.model_dump(), error)
            return
        connection = await self._with_default(connection)
        if submit.is_default is False and connection.is_default:
            # Exactly one default per environment: it moves by choosing another one, never by leaving none.
            why = "To change the default, open the settings of another connection and make it the default."
            await self._redisplay(
                turn, connection, submit.model_dump(), ValidationFailed(why, {DEFAULT_SWITCH: why})
            )
            return
        by = requester.user_name or "someone"
        if not describe_changes(connection, submit, by):
            await self._replace(turn, _notice(MessageTone.INFO, f"Nothing changed in {connection.name}", ""))
            return
        now = self._clock()
        changes: list[str] = []

        def apply(current: Connection) -> Connection:
            if current.is_default is None:
                current = current.model_copy(update={"is_default": connection.is_default})
            changes[:] = describe_changes(current, submit, by)
            update: dict[str, object] = {
                "name": submit.connection_name,
                "plan": submit.plan,
                "timezone": submit.timezone,
                "notify_mode": submit.notify_mode,
                "updated_at": now,
                "is_default": bool(submit.is_default) or bool(current.is_default),
            }
            for field, _ in SYNC_SWITCHES:
                if getattr(submit, field) is not None:
                    update[field] = getattr(submit, field)
            if submit.sync_accounts and not current.sync_accounts:
                # Changes made while the accounts were off carry old timestamps: read them all again.
                update["accounts_modified_since"] = None
            if submit.plan != current.plan and current.status == ConnectionStatus.ACTIVE:
                update["next_run_at"] = _next_due(current, submit.plan, now)
            return current.model_copy(update=update)

        before = connection
        saved = await update_connection(self._store, connection.id, apply)
        if saved is None:
            await self._replace(turn, _notice(MessageTone.WARNING, "This connection no longer exists", ""))
            return
        if not changes:
            await self._replace(turn, _notice(MessageTone.INFO, f"Nothing changed in {saved.name}", ""))
            return
        if saved.plan != before.plan and saved.status == ConnectionStatus.ACTIVE and saved.next_run_at:
            await self._store.schedule(saved.id, saved.next_run_at)
        await self._replace(
            turn, _notice(MessageTone.SUCCESS, f"Settings of {saved.name} saved", "\n".join(changes))
        )
        await turn.send_text(md_escape("\n\n".join(changes)))  # names are the users' words, not markdown
        log.info("settings of connection %s changed", saved.id, extra={"by": requester.user_id})
        if saved.is_default and not before.is_default:
            await self._clear_other_defaults(saved)
        key, thread = turn.conversation_key, thread_of(turn)
        self._tasks.spawn(self._write_dynamics(saved, key, thread), name=f"settings:{saved.id}")

    async def _with_default(self, connection: Connection) -> Connection:
        """The connection with `is_default` known: unset means as the setup decided, which made the
        first connection of an environment its default."""
        if connection.is_default is not None:
            return connection
        return connection.model_copy(update={"is_default": await self._first_in_environment(connection)})

    async def _first_in_environment(self, connection: Connection) -> bool:
        same = [c for c in await self._store.list_connections() if _same_environment(c, connection)]
        if any(c.is_default for c in same if c.id != connection.id):
            return False
        earlier = [c for c in same if c.id != connection.id and c.created_at < connection.created_at]
        return not earlier

    async def _clear_other_defaults(self, connection: Connection) -> None:
        """In our store: no other connection of the environment is its default any more, and their
        conversations are told (this one already was)."""
        env = _environment(connection)
        for other in await self._store.list_connections():
            if other.id == connection.id or not _same_environment(other, connection):
                continue
            if other.is_default is False:
                continue

            def clear(c: Connection) -> Connection:
                return c.model_copy(update={"is_default": False})

            await update_connection(self._store, other.id, clear)
            if (
                other.conversation_key == connection.conversation_key
                or other.status == ConnectionStatus.DISCONNECTED
            ):
                continue
            text = (
                f"**{md_escape(connection.name)}** is now the default connection for {md_escape(env)}; "
                f"**{md_escape(other.name)}** no longer is."
            )
            try:
                await self._sender.send_text(other.conversation_key, text, thread_id=other.thread_activity_id)
            except Exception as exc:  # that conversation may be gone; the change stands
                log.warning("could not tell another conversation about the default: %s", type(exc).__name__)

    async def _write_dynamics(self, connection: Connection, conversation_key: str, thread_id: str) -> None:
        if self._dataverse_factory is None or not connection.dataverse_api_url:
            return
        try:
            dv = self._dataverse_factory(connection)
            row_id = connection.dataverse_connector_row_id or await upsert_connector_record(dv, connection)
            if connection.is_default is None:
                # Never chosen here: keep what the setup decided.
                current = await dv.rows_for_connector(CONNECTOR_SETTINGS, row_id, ["xdc_isdefault"])
                is_default = bool(current[0].get("xdc_isdefault", True)) if current else True
            else:
                is_default = connection.is_default
            if is_default:
                await clear_other_defaults(dv, row_id)
            settings_id = await upsert_settings_record(dv, connection, row_id, is_default=is_default)
            await update_connector_status(dv, connection)
        except ConnectorError as exc:
            log.warning("could not write the settings to Dynamics 365: %s", type(exc).__name__)
            text = (
                f"⚠️ The new settings of **{md_escape(connection.name)}** are saved here and apply from the next "
                f"run, but I couldn't update its Settings record in Dynamics 365: {md_escape(error_words(exc))}. "
                "Save them again to retry."
            )
            try:
                await self._sender.send_text(conversation_key, text, thread_id=thread_id)
            except Exception as send_exc:  # the conversation may be gone too; the log has it
                log.warning("could not tell the conversation: %s", type(send_exc).__name__)
            return
        if (
            row_id != connection.dataverse_connector_row_id
            or settings_id != connection.dataverse_settings_row_id
        ):

            def remember(c: Connection) -> Connection:
                return c.model_copy(
                    update={"dataverse_connector_row_id": row_id, "dataverse_settings_row_id": settings_id}
                )

            await update_connection(self._store, connection.id, remember)

    async def _name_clash(self, connection: Connection, name: str) -> str:
        if name.casefold() == connection.name.casefold():
            return ""
        for other in await self._store.list_connections():
            if other.id == connection.id or other.status == ConnectionStatus.DISCONNECTED:
                continue
            here = other.conversation_key == connection.conversation_key
            same_env = (
                bool(connection.dataverse_env_id) and other.dataverse_env_id == connection.dataverse_env_id
            )
            if (here or same_env) and other.name.casefold() == name.casefold():
                # Only what this chat may know (issue 14): a connection of this chat by its name; of
                # another chat, neither its spelling nor where it lives. Names are unique per
                # environment, whose Connector rows the person changing this can read in Dynamics anyway.
                if here:
                    return f"Another connection in this chat is already called “{other.name}”."
                env = connection.dataverse_env_name or "this Dynamics 365 environment"
                return f"{env} already has a connection with that name. Choose another one."
        return ""

    # ---- the form again, with errors ----------------------------------------------------------------

    async def _invalid(
        self, turn: Turn, requester: Requester, value: dict[str, Any], error: ValidationFailed
    ) -> None:
        try:
            echo = _Echo.model_validate(value)
        except ValidationError:
            echo = _Echo()
        known = bool(echo.connection_id) and len(echo.connection_id) <= 100
        connection = await self._store.get_connection(echo.connection_id) if known else None
        if connection is None or not await self._authz.may_manage(connection, requester):
            await turn.send_text(f"⚠️ {md_outside(str(error), 400)}")
            return
        await self._redisplay(turn, connection, echo.model_dump(), error)

    async def _redisplay(
        self, turn: Turn, connection: Connection, typed: dict[str, Any], error: ValidationFailed
    ) -> None:
        overrides: dict[str, object] = {"field_errors": error.field_errors, "now": self._clock()}
        if not error.field_errors:
            overrides["form_error"] = str(error)
        for field in ("connection_name", "plan", "timezone"):
            text = typed.get(field)
            if isinstance(text, str) and text and field not in error.field_errors:
                overrides[field] = text[:400]
            elif field == "connection_name" and isinstance(text, str):
                overrides[field] = text[:400]  # the bad name stays, so its mistake can be seen and fixed
        card = render_settings_card(SettingsCardData.from_connection(connection, **overrides))
        if turn.reply_to_id:
            await turn.update_card(turn.reply_to_id, card)
        else:
            await turn.send_card(card)
        await turn.send_text(f"⚠️ {md_outside(str(error), 400)}")

    @staticmethod
    async def _replace(turn: Turn, card: dict[str, Any]) -> None:
        """The form is done: replace it, so its buttons cannot be pressed again."""
        if turn.reply_to_id:
            await turn.update_card(turn.reply_to_id, card)
        else:
            await turn.send_card(card)


def _same_environment(a: Connection, b: Connection) -> bool:
    if a.dataverse_env_id and b.dataverse_env_id:
        return a.dataverse_env_id == b.dataverse_env_id
    return bool(a.dataverse_api_url) and a.dataverse_api_url == b.dataverse_api_url


def _next_due(connection: Connection, plan_id: str, now: datetime) -> datetime:
    """The next run under the new plan: its interval after the last run, and never in the past."""
    plan = PLANS_BY_ID[plan_id]
    base = connection.last_run_at or now
    return max(now, base + plan.interval)


def _notice(tone: MessageTone, title: str, text: str) -> dict[str, Any]:
    return render_message_card(MessageCardData(title=title, text=text, tone=tone))
