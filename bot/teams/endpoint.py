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
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from msrest.serialization import Model

log = logging.getLogger(__name__)


def messages_handler(
    adapter: CloudAdapter, bot: Bot
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if "application/json" not in request.headers.get("Content-Type", ""):
            raise web.HTTPUnsupportedMediaType(text="Content-Type must be application/json")
        try:
            # Decoded as the request declares (its charset, else UTF-8; a BOM is not JSON).
            body = json.loads(await request.text())
        except (ValueError, LookupError):
            raise web.HTTPBadRequest(text="The body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("type"), str) or not body["type"]:
            raise web.HTTPBadRequest(text="The body is not an activity")
        try:
            activity = Activity().deserialize(body)
        except Exception:
            raise web.HTTPBadRequest(text="The activity is malformed") from None
        try:
            # CloudAdapter.process would parse the body again and serialize an invoke's answer a second
            # time (botbuilder's handlers hand back a dict already, which its serializer cannot take:
            # every adaptiveCard/action answer was a 500). Authentication and the turn are the adapter's.
            invoke = await adapter.process_activity(
                request.headers.get("Authorization", ""), activity, bot.on_turn
            )
        except (PermissionError, jwt.PyJWTError):
            # botbuilder lets a token that does not even decode escape as a 500.
            raise web.HTTPUnauthorized() from None
        if invoke is None:
            return web.Response(status=201)
        try:
            answer = serializer_helper(invoke.body) if isinstance(invoke.body, Model) else invoke.body
        except Exception as exc:
            # botbuilder's own error answers (a malformed adaptiveCard/action) hold an Exception object
            # its serializer cannot write: the status stands, without the body.
            log.warning(
                "An invoke answer (%s) could not be serialized: %s", invoke.status, type(exc).__name__
            )
            answer = None
        return web.json_response(answer, status=invoke.status)

    return handle
