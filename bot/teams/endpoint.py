"""POST /api/messages: the Bot Framework endpoint, with the input checks botbuilder leaves out.

botbuilder's CloudAdapter answers 500 to a body that is not JSON or lacks a Content-Type; a channel or a
scanner sending garbage must get 400 (415 for the wrong media type, 413 over the size limit, which
aiohttp enforces through `client_max_size`). Authentication is the adapter's: 401 when the JWT fails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import jwt
from aiohttp import web
from botbuilder.core import Bot
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity

log = logging.getLogger(__name__)


def messages_handler(adapter: CloudAdapter, bot: Bot) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if "application/json" not in request.headers.get("Content-Type", ""):
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise web.HTTPBadRequest(text="The body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
            raise web.HTTPBadRequest(text="The body is not an activity")
        try:
            Activity().deserialize(body)
        except Exception:
            raise web.HTTPBadRequest(text="The activity is malformed") from None
        try:
            response = await adapter.process(request, bot)
        except (PermissionError, jwt.PyJWTError):
            # botbuilder lets a token that does not even decode escape as a 500.
            raise web.HTTPUnauthorized() from None
        return response if response is not None else web.Response(status=201)

    return handle
