"""Liveness and readiness."""

from __future__ import annotations

from aiohttp import web

from bot.storage.base import Store


def health_routes(store: Store) -> list[web.RouteDef]:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_request: web.Request) -> web.Response:
        try:
            ok = await store.ping()
        except Exception:
            ok = False
        return web.json_response({"store": "ok" if ok else "unreachable"}, status=200 if ok else 503)

    return [web.get("/healthz", healthz), web.get("/readyz", readyz)]
