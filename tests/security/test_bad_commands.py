"""Bad input through the whole bot: random commands and random card submits, sent as Teams sends them
(messages, Action.Submit values, adaptiveCard/action invokes), to a bot holding a real connection.

Properties: never a 5xx and never a crashed turn; every message gets an answer; a submit the server-side
validator (cards.submits.parse_submit) refuses changes nothing and is answered; and someone who may not
change the connection changes nothing, whatever they send. The models themselves are fuzzed in
tests/unit/test_cards_submits.py; here it is the bot around them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from bot.commands import COMMANDS
from bot.errors import ValidationFailed
from bot.storage.base import Connection, TokenKind
from cards.submits import parse_submit
from cards.verbs import CardVerb
from tests.scenario.botharness import ALICE, BOB, BotHarness, Chat, open_bot
from tests.scenario.opsharness import connect_in, install_ops

pytestmark = pytest.mark.timeout(120)
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# The parts of a connection a user can change; run bookkeeping (last run, on-demand counter) may move.
CONFIG = ("name", "plan", "timezone", "notify_mode", "status", "conversation_key", "teams_tenant_id",
          "created_by_aad_id", "xero_tenant_id", "dataverse_env_id")  # fmt: skip


@pytest.fixture
async def bot(tmp_path: Path) -> AsyncIterator[BotHarness]:
    async with open_bot(tmp_path, install=[install_ops()]) as opened:
        yield opened


@pytest.fixture
async def setup(bot: BotHarness) -> tuple[BotHarness, Chat, Connection]:
    chat = bot.channel(ALICE)
    connection = await connect_in(bot, chat, name="Acme Books")
    return bot, chat, connection


def crashes(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.ERROR]


async def config_of(bot: BotHarness, connection_id: str) -> tuple[Any, ...]:
    current = await bot.harness.connection(connection_id)
    return tuple(getattr(current, name) for name in CONFIG)


async def tokens_of(bot: BotHarness, connection_id: str) -> tuple[bytes | None, bytes | None]:
    return (
        await bot.store.get_tokens(connection_id, TokenKind.XERO),
        await bot.store.get_tokens(connection_id, TokenKind.DYNAMICS),
    )


# ---- strategies ------------------------------------------------------------------------------------

NASTY = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs"]), max_size=12),
    st.sampled_from(["Acme Books", "acme books", "ACME", "Acme Books\x00", "Acme\u202eBooks", "x" * 3000,
                     "<at>Connector</at>", "-1", "999999999999", "all", "*", "%", "'", '"']),
)  # fmt: skip
COMMAND_WORDS = st.sampled_from([c.name for c in COMMANDS] + ["connect", "cancel", "help", "nope", ""])


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["", "sync ", "/sync ", "SYNC ", "/", "  sync\t"]))
    word = draw(COMMAND_WORDS)
    word = draw(st.sampled_from([word, word.upper(), word.title()]))
    args = draw(st.lists(NASTY, max_size=3))
    return (prefix + " ".join([word, *args]))[:6000]


ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY, inner, max_size=3),
    max_leaves=8,
)
SUBMIT_FIELDS = ["connection_id", "setup_id", "connection_name", "plan", "timezone", "notify_mode", "command",
                 "xero_tenant_id", "environment_id", "verification_code", "command_text"]  # fmt: skip


@st.composite
def submits(draw: st.DrawFn, connection_id: str) -> dict[str, Any]:
    verb = draw(st.sampled_from([v.value for v in CardVerb]) | NASTY)
    value: dict[str, Any] = {"verb": verb}
    for name in draw(st.lists(st.sampled_from(SUBMIT_FIELDS), max_size=6, unique=True)):
        value[name] = draw(
            st.sampled_from([connection_id, f"{connection_id}x", "conn-someone-else", "pause", "premium",
                             "UTC", "every_run"]) | ANY_VALUE
        )  # fmt: skip
    return value


# ---- properties ------------------------------------------------------------------------------------


@FUZZ
@given(text=command_texts())
async def test_random_commands_from_someone_who_may_not_change_it_change_nothing(
    setup: tuple[BotHarness, Chat, Connection], caplog: pytest.LogCaptureFixture, text: str
) -> None:
    bot, chat, connection = setup
    before = await config_of(bot, connection.id), await tokens_of(bot, connection.id)
    mark = bot.connector.mark()
    caplog.clear()
    response = await chat.say(text, user=BOB)
    assert response.status_code < 500, text
    answer = await bot.connector.wait_for(
        lambda e: e.kind in ("reply", "send", "create", "update"), since=mark
    )
    assert answer.text or answer.card is not None
    assert (await config_of(bot, connection.id), await tokens_of(bot, connection.id)) == before, text
    assert crashes(caplog.records) == [], text


@FUZZ
@given(text=command_texts())
async def test_random_commands_from_the_owner_are_answered_and_never_crash(
    setup: tuple[BotHarness, Chat, Connection], caplog: pytest.LogCaptureFixture, text: str
) -> None:
    bot, chat, connection = setup
    mark = bot.connector.mark()
    caplog.clear()
    response = await chat.say(text)
    assert response.status_code < 500, text
    answer = await bot.connector.wait_for(
        lambda e: e.kind in ("reply", "send", "create", "update"), since=mark
    )
    assert answer.text or answer.card is not None
    assert crashes(caplog.records) == [], text
    # Whatever it was, the connection is still there and still its owner's.
    current = await bot.harness.connection(connection.id)
    assert current.created_by_aad_id == connection.created_by_aad_id


@FUZZ
@given(data=st.data(), as_invoke=st.booleans())
async def test_card_submits_the_validator_refuses_change_nothing_and_are_answered(
    setup: tuple[BotHarness, Chat, Connection],
    caplog: pytest.LogCaptureFixture,
    data: st.DataObject,
    as_invoke: bool,
) -> None:
    bot, chat, connection = setup
    value = data.draw(submits(connection.id))
    try:
        parse_submit(value)
    except ValidationFailed:
        refused = True
    else:
        refused = False
    event("refused by the validator" if refused else "valid submit")
    before = await config_of(bot, connection.id), await tokens_of(bot, connection.id)
    mark = bot.connector.mark()
    caplog.clear()
    if as_invoke:
        response = await chat.invoke(
            "adaptiveCard/action",
            {"action": {"type": "Action.Execute", "verb": value.get("verb"), "data": value}},
        )
        assert response.status_code < 500, value
    else:
        activity = chat.activity("message", value=value, replyToId="1700000000001")
        response = await chat.post(activity)
        assert response.status_code < 500, value
        if refused:
            answer = await bot.connector.wait_for(lambda e: e.kind in ("reply", "send", "update"), since=mark)
            assert answer.text or answer.card is not None
    assert crashes(caplog.records) == [], value
    if refused:
        assert (await config_of(bot, connection.id), await tokens_of(bot, connection.id)) == before, value
