"""A server for the bot-turns benchmark, in a process of its own (see bench.bot_turns).

    python -m bench.bot_server product   the shipped application: `app.create_app(load_settings())`
    python -m bench.bot_server bare      a bare aiohttp handler doing the same HTTP work: parse the
                                         activity, POST one reply to its serviceUrl, answer 200

Both listen on 127.0.0.1 on a free port, say `{"ready": true, "port": N}` on stdout, and stop when
told `{"op": "quit"}` (bench.common.Child).

`BENCH_PROFILE=/tmp/bot.prof` (in the bench's environment) runs the product server under cProfile and
writes its statistics there on exit: where a turn's CPU goes (`python -m pstats /tmp/bot.prof`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from bench.common import serve_child

BARE_CLIENT = web.AppKey("client", aiohttp.ClientSession)


def bare_app() -> web.Application:
    """What any bot must do per message, and nothing more."""
    app = web.Application()

    async def on_startup(app: web.Application) -> None:
        app[BARE_CLIENT] = aiohttp.ClientSession()

    async def on_cleanup(app: web.Application) -> None:
        await app[BARE_CLIENT].close()

    async def messages(request: web.Request) -> web.Response:
        activity: dict[str, Any] = await request.json()
        conversation = activity["conversation"]["id"]
        reply = {
            "type": "message",
            "text": "Received.",
            "from": activity.get("recipient"),
            "recipient": activity.get("from"),
            "conversation": activity.get("conversation"),
            "replyToId": activity.get("id"),
        }
        url = f"{activity['serviceUrl'].rstrip('/')}/v3/conversations/{quote(conversation, safe='')}/activities/{quote(activity['id'], safe='')}"
        async with request.app[BARE_CLIENT].post(url, json=reply) as answer:
            await answer.read()
        return web.Response(status=200)

    app.router.add_post("/api/messages", messages)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


async def product_app() -> web.Application:
    from app import BOT_APP, create_app
    from bot.config import load_settings

    app = await create_app(load_settings())
    # The per-person message limit (bot.teams.router, issue 14: 30 a minute in a conversation) is lifted:
    # the bench's conversations post far faster than a person, and the limiter would answer them
    # "slow down" instead of doing the turn being measured. Everything else is the shipped app.
    app[BOT_APP].router._per_user = sys.maxsize
    return app


async def main(kind: str) -> None:
    logging.basicConfig(level=logging.ERROR)
    app = bare_app() if kind == "bare" else await product_app()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await serve_child({}, port=port)
    finally:
        await runner.cleanup()


def _run(kind: str) -> None:
    target = os.environ.get("BENCH_PROFILE")
    if not target or kind == "bare":
        asyncio.run(main(kind))
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(main(kind))
    finally:
        profiler.disable()
        profiler.dump_stats(target)


if __name__ == "__main__":
    _run(sys.argv[1] if len(sys.argv) > 1 else "product")
