"""Composition root: settings -> store -> clients -> sync service -> bot -> aiohttp routes. No logic here.

`python app.py` serves on PORT (default 3978). `make run` uses bot.devserver, which starts the sandbox
first and then this same application.
"""

from __future__ import annotations

import gc
import logging
from contextlib import AsyncExitStack

from aiohttp import web

from bot.config import Settings, config_errors_exit, load_settings
from bot.logs import configure_logging
from bot.storage.factory import open_store
from bot.teams.app import BotApp, open_bot_app

log = logging.getLogger("app")
BOT_APP = web.AppKey("bot_app", BotApp)


async def create_app(settings: Settings) -> web.Application:
    """The whole product as one aiohttp application (the tests build it the same way)."""
    settings.check_serving()  # fail closed: no anonymous endpoint outside sandbox mode unless opted in
    app = web.Application(client_max_size=settings.max_body_bytes)
    stack = AsyncExitStack()
    store = await open_store(settings)
    stack.push_async_callback(store.close)
    try:
        bot = await stack.enter_async_context(open_bot_app(settings, store))
    except BaseException:
        await stack.aclose()
        raise
    app[BOT_APP] = bot
    app.add_routes(bot.routes())

    async def on_startup(_app: web.Application) -> None:
        await bot.start()
        # The start-up heap (botbuilder, msrest, pydantic, our modules: ~130,000 objects) never becomes
        # garbage; out of the collector's view, a full collection no longer stops turns for 45-70 ms
        # (bench/README.md, "Findings").
        gc.collect()
        gc.freeze()

    async def on_shutdown(_app: web.Application) -> None:
        # Stop taking new work; in-flight requests finish within aiohttp's shutdown_timeout.
        await bot.stop()

    async def on_cleanup(_app: web.Application) -> None:
        await stack.aclose()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


def main() -> None:
    with config_errors_exit():
        settings = load_settings()
        settings.check_serving()
    configure_logging(settings.log_level)
    if settings.bind_host != settings.host:
        log.warning("anonymous mode: listening on %s only, not on HOST=%s", settings.bind_host, settings.host)
    with config_errors_exit():
        web.run_app(
            create_app(settings),
            host=settings.bind_host,
            port=settings.port,
            shutdown_timeout=30,
            access_log=None,
            print=None,
        )


if __name__ == "__main__":
    main()
