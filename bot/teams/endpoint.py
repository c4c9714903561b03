"""POST /api/messages: the Bot Framework endpoint, with the input checks botbuilder leaves out.

botbuilder's CloudAdapter answers 500 to a body that is not JSON or lacks a Content-Type; a channel or a
scanner sending garbage must get 400 (415 for the wrong media type, 413 over the size limit, which
aiohttp enforces through `client_max_size`). Authentication is the adapter's: 401 when the JWT fails.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from botbuilder.core import Bot
from botbuilder.core.serializer_helper import serializer_helper
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import Activity
from msrest.serialization import Model

from bot.config import is_loopback_host
from bot.web.metrics import ACTIVITY_TYPE

log = logging.getLogger(__name__)


def messages_handler(
    adapter: CloudAdapter, bot: Bot, *, loopback_service_urls_only: bool = False
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """`loopback_service_urls_only`: anonymous mode. Nothing vouches for an unsigned activity, so its
    `serviceUrl` (where the bot sends replies, and later proactive messages) may only be this machine:
    a remote caller cannot point the bot's notifications at their own server."""

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
        request[ACTIVITY_TYPE] = body["type"]  # the turn-latency metric's label (bot.web.metrics)
        try:
            activity = Activity().deserialize(body)
        except Exception:
            raise web.HTTPBadRequest(text="The activity is malformed") from None
        if loopback_service_urls_only and not _loopback_url(activity.service_url):
            log.warning("anonymous mode: refused an activity whose serviceUrl is not on this machine")
            raise web.HTTPUnauthorized(text="Anonymous mode accepts only local channels")
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


def _loopback_url(url: object) -> bool:
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and is_loopback_host(parts.hostname)
