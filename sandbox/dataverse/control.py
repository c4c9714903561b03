"""The Dataverse sandbox's control API over HTTP (JSON), for `make run` and browser tests.

    GET  /_sandbox/dataverse/requests                      the request log and the write count
    GET  /_sandbox/dataverse/rows/{env}/{entity_set}       rows as the Web API returns them
    POST /_sandbox/dataverse/fail-next      {"n", "status", "retry_after"?, "path_prefix"?}
    POST /_sandbox/dataverse/drop-next      {"n", "after_processing"?, "path_prefix"?}
    POST /_sandbox/dataverse/latency        {"seconds"}
    POST /_sandbox/dataverse/limits         {"max_requests"?, "window_seconds"?, "max_execution_ms"?, ...}
    POST /_sandbox/dataverse/install-solution | uninstall-solution   {"env"}  (the zip the sandbox was given)
    POST /_sandbox/dataverse/import-timing  {"import_seconds"?, "key_seconds"?}
    POST /_sandbox/dataverse/grant-role | revoke-role                {"env", "upn", "role"?}
    POST /_sandbox/dataverse/state          {"env", "state"}
    POST /_sandbox/dataverse/reset
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sandbox.dataverse.seed import CONNECTOR_ROLE

if TYPE_CHECKING:
    from sandbox.dataverse.server import DataverseSandbox

PREFIX = "/_sandbox/dataverse"


def add_routes(app: web.Application, sandbox: DataverseSandbox) -> None:
    async def body_of(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        data = await request.json()
        return data if isinstance(data, dict) else {}

    def action(apply: Callable[[dict[str, Any]], None]) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            try:
                apply(await body_of(request))
            except (KeyError, TypeError, ValueError) as exc:
                return web.json_response({"ok": False, "error": str(exc)}, status=400)
            return web.json_response({"ok": True})

        return handler

    async def requests(request: web.Request) -> web.Response:
        return web.json_response({
            "requests": [asdict(r) for r in sandbox.requests],
            "write_count": sandbox.write_count,
        })

    async def rows(request: web.Request) -> web.Response:
        try:
            value = sandbox.rows(request.match_info["env"], request.match_info["entity_set"])
        except KeyError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=404)
        return web.json_response({"value": value})

    router = app.router
    router.add_get(f"{PREFIX}/requests", requests)
    router.add_get(PREFIX + "/rows/{env}/{entity_set}", rows)
    router.add_post(f"{PREFIX}/fail-next", action(
        lambda b: sandbox.fail_next(
            int(b.get("n", 1)), int(b["status"]), b.get("retry_after"), path_prefix=b.get("path_prefix")
        )
    ))
    router.add_post(f"{PREFIX}/drop-next", action(
        lambda b: sandbox.drop_next(
            int(b.get("n", 1)), after_processing=bool(b.get("after_processing", False)), path_prefix=b.get("path_prefix")
        )
    ))
    router.add_post(f"{PREFIX}/latency", action(lambda b: sandbox.set_latency(float(b.get("seconds", 0)))))
    router.add_post(f"{PREFIX}/limits", action(lambda b: sandbox.set_limits(**b)))
    router.add_post(f"{PREFIX}/install-solution", action(lambda b: sandbox.install_solution(str(b["env"]))))
    router.add_post(f"{PREFIX}/uninstall-solution", action(lambda b: sandbox.uninstall_solution(str(b["env"]))))
    router.add_post(f"{PREFIX}/import-timing", action(
        lambda b: sandbox.set_import_timing(
            import_seconds=float(b.get("import_seconds", 0)), key_seconds=float(b.get("key_seconds", 0))
        )
    ))
    router.add_post(f"{PREFIX}/grant-role", action(
        lambda b: sandbox.grant_role(str(b["env"]), str(b["upn"]), str(b.get("role", CONNECTOR_ROLE)))
    ))
    router.add_post(f"{PREFIX}/revoke-role", action(
        lambda b: sandbox.revoke_role(str(b["env"]), str(b["upn"]), str(b.get("role", CONNECTOR_ROLE)))
    ))
    router.add_post(f"{PREFIX}/state", action(lambda b: sandbox.set_state(str(b["env"]), int(b["state"]))))
    router.add_post(f"{PREFIX}/reset", action(lambda b: sandbox.reset()))
