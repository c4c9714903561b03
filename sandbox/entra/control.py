"""The Entra sandbox's control API over HTTP (JSON), for `make run` and browser tests.

    GET  /_sandbox/entra/requests                 the request log (method, path, status, grant type)
    POST /_sandbox/entra/expire-tokens            every access token issued so far is rejected from now on
    POST /_sandbox/entra/revoke-user              {"upn"}: refresh tokens fail with invalid_grant (50173)
    POST /_sandbox/entra/require-interaction      {"upn", "required"?}: refresh fails with interaction_required
    POST /_sandbox/entra/fail-next                {"n", "status"?, "path_prefix"?, "retry_after"?}: the next n token
                                                  requests (or requests under path_prefix) fail like an outage:
                                                  status (5xx, default 503), temporarily_unavailable AADSTS90033
                                                  (see faults.py); 400 for a bad n or a status outside 5xx
    POST /_sandbox/entra/clear-faults             drop the fault switches still pending (nothing else)
    POST /_sandbox/entra/reset                    codes, tokens, consents, fault switches, request log
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from sandbox.entra.server import EntraSandbox

PREFIX = "/_sandbox/entra"


def add_routes(app: web.Application, sandbox: EntraSandbox) -> None:
    async def body_of(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text="the body is not JSON") from None
        return data if isinstance(data, dict) else {}

    async def requests(request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in sandbox.requests])

    async def expire(request: web.Request) -> web.Response:
        sandbox.expire_tokens()
        return web.json_response({"ok": True})

    async def revoke(request: web.Request) -> web.Response:
        try:
            sandbox.revoke_user(str((await body_of(request)).get("upn", "")))
        except KeyError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=404)
        return web.json_response({"ok": True})

    async def interaction(request: web.Request) -> web.Response:
        body = await body_of(request)
        try:
            sandbox.require_interaction(str(body.get("upn", "")), bool(body.get("required", True)))
        except KeyError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=404)
        return web.json_response({"ok": True})

    async def fail_next(request: web.Request) -> web.Response:
        body = await body_of(request)
        try:
            retry_after = body.get("retry_after")
            path_prefix = body.get("path_prefix")
            sandbox.fail_next(
                int(body.get("n", 1)),
                int(body.get("status", 503)),
                retry_after=None if retry_after is None else int(retry_after),
                path_prefix=None if path_prefix is None else str(path_prefix),
            )
        except (TypeError, ValueError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "pending": sandbox.faults.pending})

    async def clear_faults(request: web.Request) -> web.Response:
        sandbox.faults.reset()
        return web.json_response({"ok": True})

    async def reset(request: web.Request) -> web.Response:
        sandbox.reset()
        return web.json_response({"ok": True})

    app.router.add_get(f"{PREFIX}/requests", requests)
    app.router.add_post(f"{PREFIX}/expire-tokens", expire)
    app.router.add_post(f"{PREFIX}/revoke-user", revoke)
    app.router.add_post(f"{PREFIX}/require-interaction", interaction)
    app.router.add_post(f"{PREFIX}/fail-next", fail_next)
    app.router.add_post(f"{PREFIX}/clear-faults", clear_faults)
    app.router.add_post(f"{PREFIX}/reset", reset)
