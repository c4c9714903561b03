"""Part 1, bot turns: the shipped bot under 50 concurrent conversations, beside a bare aiohttp handler.

Two turns are measured, each for an existing connection set up in its conversation:

    status           "/sync status"
    settings submit  Save on the connection's settings card (the notify mode flips every time, so each
                     Save really changes something: store write, card replaced, a message, and the
                     Dynamics 365 records updated in the background)

50 simulated conversations (Alice's personal chats, activities built as the scenario tests build them)
post to POST /api/messages; replies go to the scenario harness's fake Bot Connector. The bot is the
shipped application (`app.create_app`, on Redis, scheduler off, anonymous Bot Framework auth as with the
Agents Playground) in a process of its own; the bare handler (bench/bot_server.py) does only the HTTP
work every bot does: parse the activity, POST one reply, answer. A turn's latency is from sending the
activity to the HTTP answer (the bot answers after its replies were posted). Two loads:

    saturated   each conversation posts its next activity as soon as the last is answered: the most
                turns a second the server can take (the throughput ratio), and the latency that comes
                with 50 turns always in flight (by Little's law, 50 / throughput)
    steady      the 50 conversations together post `STEADY_RATE` turns a second at random moments
                (a Poisson process), whether or not earlier turns were answered: the latency a person
                sees when the server is not saturated (the p99 target)

Bot and bare alternate in rounds of a few seconds with the same load generator and connector, so every
ratio is measured side by side; figures are medians over the rounds (the steady percentiles pool the
rounds' turns, as each round has few).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    Child,
    busy_between,
    child,
    log,
    machine_cpu,
    median,
    percentile,
    process_cpu_seconds,
    redis_server,
    table,
)
from bench.scale_fleet import make_fleet
from bot.teams.router import SLOW_DOWN
from tests.integration.harness import open_harness
from tests.scenario.botharness import ALICE, Chat, FakeConnector, Outbound

CONVERSATIONS = 50
STEADY_RATE = 20.0  # turns a second from all 50 conversations: each person every 2.5 s, a busy tenant
P99_TARGET_MS = 50.0
# Issue 18: `/sync status` at least 0.2x the bare handler's turns a second (it was 0.06x); an earlier
# goal of 0.5x is out of reach for botbuilder-python (bench/README.md).
THROUGHPUT_TARGET = 0.2
THROUGHPUT_TURN = "status"
NOTIFY_MODES = ("every_run", "failures_only")


@dataclass(frozen=True)
class Plan:
    rounds: int
    saturated: float  # seconds per side per round
    steady: float
    warmup: float


FULL = Plan(rounds=4, saturated=2.5, steady=2.5, warmup=1.0)  # 20 s of load per side and turn
QUICK = Plan(rounds=2, saturated=1.5, steady=1.5, warmup=0.5)


@dataclass
class _Endpoint:
    """What botharness.Chat needs of its bot to build activities: the connector's URL."""

    connector: FakeConnector


@dataclass
class Round:
    turns: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    server_cpu: float = 0.0
    bench_cpu: float = 0.0
    machine_busy: float = math.nan

    @property
    def rate(self) -> float:
        return self.turns / self.seconds if self.seconds else math.nan


async def run(quick: bool = False) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    scenarios: dict[str, Any] = {}
    with redis_server() as redis, tempfile.TemporaryDirectory(prefix="bench-turns-") as tmp:
        async with open_harness(Path(tmp), redis_url=redis.url) as h:
            fleet = await make_fleet(h, CONVERSATIONS, plan="standard", accounts=10, prefix="turns")
            connector = FakeConnector()
            await connector.start()
            env = {**h.settings_env(), "RUN_SCHEDULER": "false", "LOG_LEVEL": "ERROR"}
            try:
                async with (
                    child("bench.bot_server", env, ["product"]) as product,
                    child("bench.bot_server", env, ["bare"]) as bare,
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session,
                ):
                    chats = [
                        Chat(_Endpoint(connector), ALICE, conversation_id=f"conversation-{cid}")  # type: ignore[arg-type]
                        for cid in fleet.ids
                    ]
                    names = {c.id: c.name for c in await h.store.list_connections()}
                    makers = {
                        "status": _status_turns(chats),
                        "settings_submit": await _submit_turns(
                            session, product, connector, chats, fleet.ids, names
                        ),
                    }
                    for name, make in makers.items():
                        log(f"   {name}: {plan.rounds} rounds of {plan.saturated + plan.steady:.0f} s a side")
                        scenarios[name] = await _scenario(session, product, bare, connector, make, plan)
            finally:
                await connector.stop()
    result: dict[str, Any] = {
        "conversations": CONVERSATIONS,
        "rounds": plan.rounds,
        "steady_rate": STEADY_RATE,
        "seconds_per_side_per_round": plan.saturated + plan.steady,
        "scenarios": scenarios,
    }
    result["targets"] = _targets(scenarios)
    return result


Maker = Callable[[int], dict[str, Any]]


def _status_turns(chats: list[Chat]) -> Maker:
    def make(i: int) -> dict[str, Any]:
        return chats[i].activity("message", text="/sync status", textFormat="plain")

    return make


def _settings_form_of(chat: Chat, sent: Outbound) -> bool:
    return sent.conversation_id == chat.conversation_id and sent.card is not None and sent.has_action("Save")


async def _submit_turns(
    session: aiohttp.ClientSession,
    product: Child,
    connector: FakeConnector,
    chats: list[Chat],
    ids: list[str],
    names: dict[str, str],
) -> Maker:
    """Ask each conversation's bot for its settings card once; each turn then presses its Save."""
    url = _url(product)
    cards: list[tuple[str, dict[str, Any]]] = []
    for chat in chats:
        mark = connector.mark()
        async with session.post(url, json=chat.activity("message", text="settings", textFormat="plain")) as r:
            await r.read()
        card = await connector.wait_for(partial(_settings_form_of, chat), since=mark, timeout=10)
        cards.append((card.activity_id, card.action("Save").get("data", {})))
    flips = [0] * len(chats)

    def make(i: int) -> dict[str, Any]:
        flips[i] += 1
        card_id, data = cards[i]
        value = {
            "connection_name": names[ids[i]],
            "plan": "standard",
            "timezone": "UTC",
            "notify_mode": NOTIFY_MODES[flips[i] % 2],
            **data,
        }
        return chats[i].activity("message", value=value, replyToId=card_id)

    return make


def _url(server: Child) -> str:
    return f"http://127.0.0.1:{server.info['port']}/api/messages"


async def _load(
    session: aiohttp.ClientSession,
    server: Child,
    make: Maker,
    seconds: float,
    rate: float | None = None,
    seed: int = 0,
) -> Round:
    """Saturated (`rate` None): each conversation posts again once answered. Steady: the conversations
    together post `rate` turns a second, each at its own Poisson moments, answered or not."""
    url = _url(server)
    loop = asyncio.get_running_loop()
    stop_at = loop.time() + seconds
    result = Round()
    rng = random.Random(seed)

    async def turn(i: int) -> None:
        activity = make(i)
        started = time.perf_counter()
        async with session.post(url, json=activity) as response:
            await response.read()
            ok = response.status < 300
        result.latencies.append(time.perf_counter() - started)
        result.turns += 1
        result.errors += 0 if ok else 1

    async def saturated(i: int) -> None:
        while loop.time() < stop_at:
            await turn(i)

    async def steady(offered: float) -> None:
        # `offered` turns a second over the window at uniformly random moments (a Poisson process given
        # its count), each from a random conversation, posted whether or not earlier ones were answered.
        count = round(offered * seconds)
        arrivals = sorted((rng.uniform(0, seconds), rng.randrange(CONVERSATIONS)) for _ in range(count))
        start = loop.time()
        pending: list[asyncio.Task[None]] = []
        for moment, i in arrivals:
            await asyncio.sleep(max(0.0, start + moment - loop.time()))
            pending.append(asyncio.create_task(turn(i)))
        await asyncio.gather(*pending)

    cpu = process_cpu_seconds(server.proc.pid), process_cpu_seconds(os.getpid())
    machine = machine_cpu()
    began = time.perf_counter()
    if rate is None:
        await asyncio.gather(*(saturated(i) for i in range(CONVERSATIONS)))
    else:
        await steady(rate)
    # Steady: the window, not the tail of the last answers, is what the offered rate is over.
    result.seconds = time.perf_counter() - began if rate is None else seconds
    result.server_cpu = process_cpu_seconds(server.proc.pid) - cpu[0]
    result.bench_cpu = process_cpu_seconds(os.getpid()) - cpu[1]
    result.machine_busy = busy_between(machine, machine_cpu())
    return result


async def _settle(server: Child, *, idle_share: float = 0.1, limit: float = 20.0) -> None:
    """Wait until the bot's background work of the last phase (each Save writes to Dynamics after
    its answer) is done, i.e. it uses under `idle_share` of a core: otherwise the next phase measures
    the drain of a saturated one (hundreds of queued Dataverse writes) instead of its own turns."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        before = process_cpu_seconds(server.proc.pid)
        await asyncio.sleep(0.25)
        if process_cpu_seconds(server.proc.pid) - before < idle_share * 0.25:
            return
    log(f"   the bot was still busy {limit:.0f} s after a phase")


async def _scenario(
    session: aiohttp.ClientSession,
    product: Child,
    bare: Child,
    connector: FakeConnector,
    make: Maker,
    plan: Plan,
) -> dict[str, Any]:
    await _load(session, product, make, plan.warmup)
    await _load(session, bare, make, plan.warmup)
    rounds: dict[tuple[str, str], list[Round]] = {}
    refused = 0
    for r in range(plan.rounds):
        order = (
            [("product", product), ("bare", bare)] if r % 2 == 0 else [("bare", bare), ("product", product)]
        )
        for load, seconds, rate in (
            ("saturated", plan.saturated, None),
            ("steady", plan.steady, STEADY_RATE),
        ):
            for side, server in order:
                # A turn answered "slow down" (the per-person limit) did not do the work measured.
                refused += sum(1 for e in connector.outbound if SLOW_DOWN in e.text)
                connector.outbound.clear()  # what the bot sent is not read back here; keep memory flat
                # The same seed for both sides of a round: the same moments and conversations.
                rounds.setdefault((load, side), []).append(
                    await _load(session, server, make, seconds, rate, r)
                )
                await _settle(product)
    out: dict[str, Any] = {"saturated": {}, "steady": {}}
    for (load, side), done in rounds.items():
        pooled = [x for r in done for x in r.latencies]
        out[load][side] = {
            "turns_per_s": median([x.rate for x in done]),
            "turns_per_s_rounds": [x.rate for x in done],
            "p50_ms": median([1000 * percentile(x.latencies, 50) for x in done]),
            "p95_ms": median([1000 * percentile(x.latencies, 95) for x in done]),
            "p99_ms": median([1000 * percentile(x.latencies, 99) for x in done]),
            "pooled_p50_ms": 1000 * percentile(pooled, 50),
            "pooled_p95_ms": 1000 * percentile(pooled, 95),
            "pooled_p99_ms": 1000 * percentile(pooled, 99),
            "max_ms": 1000 * max(pooled) if pooled else math.nan,
            "turns": len(pooled),
            "errors": sum(x.errors for x in done),
            "server_cpu_ms_per_turn": median([1000 * x.server_cpu / x.turns for x in done if x.turns]),
            "bench_cpu_share": median([x.bench_cpu / x.seconds for x in done]),
            "machine_busy": median([x.machine_busy for x in done]),
        }
    # Each round's bot figure over the bare figure of the same round, then the median.
    pairs = zip(rounds[("saturated", "product")], rounds[("saturated", "bare")], strict=True)
    out["throughput_ratio"] = median([p.rate / b.rate for p, b in pairs])
    out["refused_slow_down"] = refused
    return out


def _targets(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    p99 = {name: s["steady"]["product"]["pooled_p99_ms"] for name, s in scenarios.items()}
    saturated = {name: s["saturated"]["product"]["p99_ms"] for name, s in scenarios.items()}
    ratios = {name: s["throughput_ratio"] for name, s in scenarios.items()}
    errors = sum(s[load]["product"]["errors"] for s in scenarios.values() for load in ("steady", "saturated"))
    errors += sum(s.get("refused_slow_down", 0) for s in scenarios.values())
    return [
        {
            "target": f"p99 < 50 ms (50 conversations, {STEADY_RATE:.0f} turns/s)",
            "measured": ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in p99.items())
            + "; saturated (50 always in flight): "
            + ", ".join(f"{k.replace('_', ' ')} {v:.0f} ms" for k, v in saturated.items())
            + (f"; {errors} turns answered with an error" if errors else ""),
            "met": all(v < P99_TARGET_MS for v in p99.values()) and errors == 0,
        },
        {
            "target": f">= {THROUGHPUT_TARGET}x the bare handler's throughput for /sync status",
            "measured": ", ".join(f"{k.replace('_', ' ')} {v:.2f}x" for k, v in ratios.items()),
            "met": ratios.get(THROUGHPUT_TURN, 0.0) >= THROUGHPUT_TARGET,
        },
    ]


def render(result: dict[str, Any]) -> str:
    rows = []
    for name, s in result["scenarios"].items():
        for load in ("saturated", "steady"):
            for side in ("product", "bare"):
                x = s[load][side]
                ratio = f"{s['throughput_ratio']:.2f}x" if side == "product" and load == "saturated" else ""
                p = (
                    ("pooled_p50_ms", "pooled_p95_ms", "pooled_p99_ms")
                    if load == "steady"
                    else ("p50_ms", "p95_ms", "p99_ms")
                )
                rows.append(
                    [
                        name.replace("_", " "),
                        load,
                        "bot" if side == "product" else "bare aiohttp",
                        x["turns_per_s"],
                        x[p[0]],
                        x[p[1]],
                        x[p[2]],
                        x["max_ms"],
                        x["errors"],
                        x["server_cpu_ms_per_turn"],
                        ratio,
                    ]
                )
    return table(
        [
            "Turn",
            "Load",
            "Server",
            "Turns/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "Errors",
            "Server CPU ms/turn",
            "Bot/bare turns/s",
        ],
        rows,
    )
