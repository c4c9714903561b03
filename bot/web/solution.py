"""`GET /solution/<file>`: the solution zip this bot ships, for "Download and import" on the setup card.

Only the current version's two zips are served (managed, for customers; unmanaged, for development);
any other name is 404. The bytes are built once from bot.sync.tables (bot.solution), so what a customer
downloads is exactly what "Install it for me" imports.
"""

from __future__ import annotations

from aiohttp import web

from bot.solution import build_zip, solution_version, zip_filename

SOLUTION_PATH = "/solution"


def _package(name: str) -> bytes | None:
    """The zip of that name, if it is one of this version's two (bot.solution caches the build)."""
    version = solution_version()
    for managed in (True, False):
        if name == zip_filename(managed=managed, version=version):
            return build_zip(managed=managed, version=version)
    return None


def download_url(public_base_url: str) -> str:
    """Where the setup card's download button points: the managed zip of this version."""
    return f"{public_base_url.rstrip('/')}{SOLUTION_PATH}/{zip_filename(managed=True)}"


async def _download(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    body = _package(name) if len(name) <= 120 else None
    if body is None:
        raise web.HTTPNotFound(text="No such solution file.")
    return web.Response(
        body=body,
        content_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )


def solution_routes() -> list[web.RouteDef]:
    return [web.get(SOLUTION_PATH + "/{name}", _download)]
