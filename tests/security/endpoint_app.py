"""The product's /api/messages endpoint, two ways.

`build_product`: the whole product exactly as `python app.py` composes it (`app.create_app(settings)`),
scheduler off. `build_endpoint`: the same adapter, endpoint and bot class assembled by hand as
`tests/unit/test_endpoint.py` does, with the help command recorded instead of answered (with an app id
set, an answer would need a Bot Connector token from the internet). Every turn that reaches the bot saves
the conversation reference first thing: that is how the tests see whether a request got past
authentication.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from botbuilder.core import ConversationState

from bot.config import Settings, load_settings
from bot.storage.base import Store
from bot.storage.sqlite import SqliteStore
from bot.teams.adapter import build_adapter
from bot.teams.endpoint import messages_handler
from bot.teams.handler import ConnectorBot
from bot.teams.router import Router
from bot.teams.state import StoreStorage
from bot.teams.turn import Turn

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]  # type: ignore[type-arg]
APP_ID = "0b5d6f4e-1c1f-4f57-9a3e-7f0c8a1d2e3f"
APP_PASSWORD = "bot-app-password-not-a-real-one"


@dataclass
class Endpoint:
    app: web.Application
    store: Store
    settings: Settings
    welcomed: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    async def reached_bot(self, activity: dict[str, Any]) -> bool:
        """Whether a turn for this activity's conversation ran (it saves the reference first thing)."""
        key = f"{activity['channelId']}:{activity['conversation']['id']}"
        return await self.store.get_reference(key) is not None


async def build_endpoint(tmp_path: Path, *, record_help: bool = True, **overrides: Any) -> Endpoint:
    """`record_help`: the help command is recorded instead of answered (with an app id, an answer would
    need a Bot Connector token from the internet); False keeps the product's own help reply."""
    settings = load_settings(_env_file=None, data_dir=tmp_path, **overrides)
    store = await SqliteStore.open(tmp_path / "connector.db")
    adapter = build_adapter(settings)
    endpoint = Endpoint(web.Application(), store, settings)  # type: ignore[arg-type]

    async def welcome(turn: Turn) -> None:
        endpoint.welcomed.append(turn.activity.conversation.id)

    router = Router()

    async def help_command(turn: Turn, args: list[str]) -> None:
        # Recorded, not answered: an answer would need a Bot Connector token from the internet.
        endpoint.commands.append(turn.text)

    if record_help:
        router.on_help(help_command)
    bot = ConnectorBot(router, store, ConversationState(StoreStorage(store)), welcome)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app.router.add_post("/api/messages", messages_handler(adapter, bot))
    endpoint.app = app
    return endpoint


async def build_product(tmp_path: Path, **overrides: Any) -> Endpoint:
    """`app.create_app`: the store, the sync runtime, the setup and the commands, the real routes. The
    store is closed by the app's cleanup (when the test client closes)."""
    from app import BOT_APP, create_app

    settings = load_settings(_env_file=None, data_dir=tmp_path, run_scheduler=False, **overrides)
    app = await create_app(settings)
    return Endpoint(app, app[BOT_APP].store, settings)


def activity(
    activity_type: str = "event",
    *,
    conversation: str = "a:conv-1",
    service_url: str = "https://smba.trafficmanager.net/amer/",
    channel: str = "msteams",
    **fields: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": activity_type,
        "id": "act-1",
        "channelId": channel,
        "serviceUrl": service_url,
        "conversation": {"id": conversation, "conversationType": "personal", "tenantId": "tenant-1"},
        "from": {"id": "29:user", "aadObjectId": "user-aad-1", "name": "Ann"},
        "recipient": {"id": f"28:{APP_ID}", "name": "Connector"},
        "channelData": {"tenant": {"id": "tenant-1"}},
    }
    if activity_type == "event":
        body["name"] = "security-probe"
    body.update(fields)
    return body


class FakeConnector:
    """The Bot Connector's send/reply/update endpoints on a real port, recording what the bot sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._send)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._send)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.sent.append(body)
        return web.json_response({"id": f"sent-{len(self.sent)}"}, status=201)
