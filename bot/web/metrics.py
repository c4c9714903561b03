"""GET /metrics on the bot (Prometheus text format), and the turn-latency measurement of the endpoint."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot import metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Set by the messages endpoint once it has read the activity's type (the turn's label).
ACTIVITY_TYPE = web.RequestKey("activity_type", str)


def metrics_routes() -> list[web.RouteDef]:
    async def serve(request: web.Request) -> web.Response:
        body, content_type = metrics.render(request.headers.get("Accept", ""))
        response = web.Response(body=body)
        # aiohttp splits content_type from charset; the header is set whole, as the client library says.
        response.headers["Content-Type"] = content_type
        return response

    return [web.get("/metrics", serve)]


def timed_turns(handler: Handler) -> Handler:
    """`handler`, with every answer's latency recorded (including refusals: 400, 401, 415)."""

    async def timed(request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            kind = request.get(ACTIVITY_TYPE)
            metrics.turn_answered(
                kind if isinstance(kind, str) else "none", status, time.perf_counter() - started
            )

    return timed
