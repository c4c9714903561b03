"""Cards that ask one question: "Disconnect?" and "Which connection?"."""

from __future__ import annotations

from pydantic import Field, field_validator

from bot.commands import COMMANDS_BY_NAME
from cards.base import CardData, Choice, clip
from cards.elements import error_text, facts, submit
from cards.template import Json, finish, load_template, slot
from cards.verbs import CardVerb


class DisconnectCardData(CardData):
    connection_id: str
    connection_name: str
    xero_org_name: str = ""
    dynamics_env_name: str = ""


def render_disconnect_card(data: DisconnectCardData) -> Json:
    card = load_template("disconnect")
    slot(card, "name")["inlines"] = [
        {"type": "TextRun", "text": clip(data.connection_name, 100), "isSubtle": True}
    ]
    sides = [("Xero organisation", data.xero_org_name), ("Dynamics 365", data.dynamics_env_name)]
    slot(card, "sides")["facts"] = facts((title, clip(value, 100)) for title, value in sides if value)[
        "facts"
    ]
    slot(card, "confirm").update(
        submit("Disconnect", CardVerb.CONFIRM_DISCONNECT, connection_id=data.connection_id)
    )
    slot(card, "keep").update(submit("Keep it", CardVerb.CANCEL_DISCONNECT, connection_id=data.connection_id))
    return finish(card)


class ConnectionChoiceCardData(CardData):
    command: str  # the command to run once a connection is chosen
    connections: tuple[Choice, ...] = Field(min_length=1)
    error: str = ""  # e.g. "No connection is called “Acme”."

    @field_validator("command")
    @classmethod
    def _known(cls, value: str) -> str:
        command = COMMANDS_BY_NAME.get(value)
        if command is None or not command.takes_name:
            raise ValueError("must be a command that takes a connection name")
        return value


def render_connection_choice_card(data: ConnectionChoiceCardData) -> Json:
    card = load_template("choose_connection")
    slot(card, "question")["text"] = (
        f"There are {len(data.connections)} connections in this chat. Which one do you mean for **{data.command}**?"
        if len(data.connections) > 1
        else f"Do you mean this connection for **{data.command}**?"
    )
    choice = next(node for node in card["body"] if node.get("id") == "connection_id")
    choice["choices"] = [{"title": clip(c.title, 100), "value": c.value} for c in data.connections]
    choice["style"] = "expanded" if len(data.connections) <= 6 else "compact"
    if len(data.connections) == 1:
        choice["value"] = data.connections[0].value
    if data.error:
        slot(card, "error")["items"] = [error_text(clip(data.error, 300))]
    slot(card, "go").update(
        submit("Continue", CardVerb.PICK_CONNECTION, with_inputs=True, command=data.command)
    )
    return finish(card)
