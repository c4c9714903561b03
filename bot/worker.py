"""`python -m bot.worker`: a process that only runs syncs, beside the bot, on the shared Redis store.

The worker's composition root: the loop is `bot.sync.worker.serve`; this module reads the command line and
the settings and gives the sync core the words it leaves on the Connector row in Dynamics 365
(`cards.failure_words`), which the sync core itself does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.config import config_errors_exit, load_settings
from bot.errors import StoreError
from bot.logs import configure_logging
from bot.sync.worker import DEFAULT_CONCURRENCY, DEFAULT_GRACE_SECONDS, serve
from cards.failure_words import connector_outcome_words

log = logging.getLogger(__name__)

# Why a worker refuses the embedded store: one line, on stderr, with exit code 2 like a bad setting.
SQLITE_REFUSAL = (
    "refusing to start: REDIS_URL is not set, and a separate worker needs the shared Redis store "
    "(on the embedded SQLite store the bot's own scheduler runs the syncs: start the bot alone)"
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bot.worker",
        description=(
            "A process that only runs syncs, beside the bot, on the shared Redis store. "
            "Any number of workers can share one Redis."
        ),
        epilog=(
            "Settings come from the environment or .env, as for the bot (see README.md). "
            f"REDIS_URL is required. WORKER_CONCURRENCY (default {DEFAULT_CONCURRENCY}): runs at once; "
            f"WORKER_GRACE_SECONDS (default {DEFAULT_GRACE_SECONDS:.0f}): how long runs under way may "
            "finish after SIGTERM. WORKER_METRICS_PORT (default 0, off): serve /metrics (Prometheus) and "
            "/readyz (schedule lag) on that port of WORKER_METRICS_HOST (default 127.0.0.1)."
        ),
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    parse_args(argv)
    with config_errors_exit():
        settings = load_settings()
    if not settings.redis_url:
        # SQLite is the embedded store of one machine's bot, which runs its syncs itself; a worker
        # exists to add processes (and machines) on a store they all share, which only Redis is.
        sys.stderr.write(SQLITE_REFUSAL + "\n")
        return 2
    configure_logging(settings.log_level)
    try:
        with config_errors_exit():
            asyncio.run(serve(settings, outcome_words=connector_outcome_words))
    except StoreError as exc:
        log.error("the store cannot be reached: %s", exc)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
