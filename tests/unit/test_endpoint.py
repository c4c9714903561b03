"""POST /api/messages: garbage gets 400 (never 500), no token gets 401 when an app id is set."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from botbuilder.core import ConversationState

from bot.config import load_settings
from bot.storage.sqlite import SqliteStore
from bot.teams.adapter import build_adapter
from bot.teams.endpoint import messages_handler
from bot.teams.handler import ConnectorBot
from bot.teams.router import Router
from bot.teams.state import StoreStorage
from bot.teams.turn import Turn
from bot.web.health import health_routes

ClientFactory = Callable[[web.Application], Awaitable[TestClient]]  # type: ignore[type-arg]


async def _app(tmp_path: Path, **overrides: object) -> tuple[web.Application, SqliteStore]:
    settings = load_settings(data_dir=tmp_path, **overrides)
    store = await SqliteStore.open(tmp_path / "connector.db")
    adapter = build_adapter(settings)

    async def welcome(turn: Turn) -> None:
        await turn.send_text("welcome")

    bot = ConnectorBot(Router(), store, ConversationState(StoreStorage(store)), welcome)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app.router.add_post("/api/messages", messages_handler(adapter, bot))
    app.add_routes(health_routes(store))
    return app, store


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not json at all", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'{"no": "type"}', "application/json", 400),
        (b'{"type": 5}', "application/json", 400),
        (b'{"type": "message", "timestamp": "not-a-date"}', "application/json", 400),
        (b"\xff\xfe\x00", "application/json", 400),
        (b'{"type": "message"}', "text/plain", 415),
    ],
)
async def test_garbage_gets_4xx_never_500(
    aiohttp_client: ClientFactory, tmp_path: Path, body: bytes, content_type: str, status: int
) -> None:
    app, store = await _app(tmp_path)
    client = await aiohttp_client(app)
    response = await client.post("/api/messages", data=body, headers={"Content-Type": content_type})
    assert response.status == status
    await store.close()


async def test_oversized_body_gets_413(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    app, store = await _app(tmp_path)
    client = await aiohttp_client(app)
    body = b'{"type": "message", "text": "' + b"x" * (400 * 1024) + b'"}'
    response = await client.post("/api/messages", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 413
    await store.close()


async def test_app_id_set_and_no_token_gets_401(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    app, store = await _app(
        tmp_path, microsoft_app_id="11111111-2222-3333-4444-555555555555", microsoft_app_password="pw"
    )
    client = await aiohttp_client(app)
    activity = {
        "type": "message",
        "text": "sync help",
        "channelId": "msteams",
        "serviceUrl": "http://127.0.0.1:1/",
        "conversation": {"id": "c1"},
        "from": {"id": "u1"},
        "recipient": {"id": "b1"},
    }
    response = await client.post("/api/messages", json=activity)
    assert response.status == 401
    response = await client.post("/api/messages", json=activity, headers={"Authorization": "Bearer forged.token.x"})
    assert response.status == 401
    await store.close()


async def test_health_and_readiness(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    app, store = await _app(tmp_path)
    client = await aiohttp_client(app)
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await store.close()
    assert (await client.get("/readyz")).status == 503
