"""The connector clients' cheaper path (bot.teams.connector_speedups) behaves as msrest's own did.

Over real HTTP to a small aiohttp server standing in for the Bot Connector: replies and updates arrive
as msrest would send them, idempotent calls are retried on 5xx as urllib3 retried them (not POSTs, not
429), errors keep their status; the serializer's fast path gives what msrest's path gives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from enum import Enum
from typing import Any

import pytest
from aiohttp import web
from botbuilder.schema import Activity, Attachment, ChannelAccount, ConversationAccount
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.exceptions import ClientRequestError, HttpOperationError
from msrest.serialization import Serializer

from bot.teams import connector_speedups
from bot.teams.connector_speedups import AiohttpSender, ClientCache, plain_json, use_sender
from bot.teams.proactive import http_status, retry_after


class Connector:
    """Answers with the statuses queued in `plan` (then 200), recording each request."""

    def __init__(self) -> None:
        self.plan: list[int] = []
        self.seen: list[tuple[str, str, dict[str, Any], str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.seen.append((request.method, request.path, body, request.headers.get("Authorization", "")))
        status = self.plan.pop(0) if self.plan else 200
        if status >= 400:
            headers = {"Retry-After": "7"} if status == 429 else {}
            return web.json_response(
                {"error": {"code": "x", "message": "no"}}, status=status, headers=headers
            )
        return web.json_response({"id": f"sent-{len(self.seen)}"}, status=status)


@pytest.fixture
async def connector() -> AsyncIterator[tuple[Connector, str]]:
    fake = Connector()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def sender() -> AsyncIterator[tuple[AiohttpSender, list[float]]]:
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    made = AiohttpSender(sleep=record)
    yield made, waits
    await made.close()


def _client(url: str, sender: AiohttpSender) -> ConnectorClient:
    return use_sender(ConnectorClient(MicrosoftAppCredentials("", ""), base_url=url), sender)


def _card_reply() -> Activity:
    card = {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": "ünïcode", "n": 1.5}],
    }
    return Activity(
        type="message",
        text="hello",
        from_property=ChannelAccount(id="bot"),
        recipient=ChannelAccount(id="user"),
        conversation=ConversationAccount(id="a:conv"),
        attachments=[Attachment(content_type="application/vnd.microsoft.card.adaptive", content=card)],
    )


async def test_a_reply_arrives_as_msrest_serializes_it(connector: tuple[Connector, str], sender: Any) -> None:
    fake, url = connector
    client = _client(url, sender[0])
    answer = await client.conversations.reply_to_activity("a:conv", "act-1", _card_reply())
    assert answer.id == "sent-1"
    method, path, body, auth = fake.seen[0]
    assert (method, path) == ("POST", "/v3/conversations/a:conv/activities/act-1")
    assert body["attachments"][0]["content"]["body"][0]["text"] == "ünïcode"
    assert body["from"] == {"id": "bot"}
    assert body["type"] == "message"
    assert auth == ""  # anonymous credentials sign nothing


async def test_an_update_is_retried_on_5xx_like_urllib3(
    connector: tuple[Connector, str], sender: Any
) -> None:
    fake, url = connector
    made, waits = sender
    fake.plan = [503, 502]
    update = _card_reply()
    update.id = "act-9"
    await _client(url, made).conversations.update_activity("a:conv", "act-9", update)
    assert [m for m, *_ in fake.seen] == ["PUT", "PUT", "PUT"]
    assert waits == [0.0, 1.6]  # urllib3: none before the first retry, then 0.8 * 2 ** (n - 1)


async def test_posts_and_429s_are_not_retried_and_keep_their_status(
    connector: tuple[Connector, str], sender: Any
) -> None:
    fake, url = connector
    made, waits = sender
    client = _client(url, made)
    fake.plan = [502]
    with pytest.raises(HttpOperationError) as post_error:
        await client.conversations.reply_to_activity("a:conv", "act-1", _card_reply())
    # What the proactive sender reads to decide on a retry (and a 403's removal).
    assert http_status(post_error.value) == 502
    update = _card_reply()
    fake.plan = [429]
    with pytest.raises(HttpOperationError) as throttled:
        await client.conversations.update_activity("a:conv", "act-9", update)
    assert http_status(throttled.value) == 429
    assert retry_after(throttled.value) == 7.0
    assert len(fake.seen) == 2
    assert waits == []


async def test_a_refused_connection_is_retried_three_times_then_a_client_error(sender: Any) -> None:
    made, waits = sender
    client = _client("http://127.0.0.1:9", made)  # discard port: nothing listens
    with pytest.raises(ClientRequestError):
        await client.conversations.reply_to_activity("a:conv", "act-1", _card_reply())
    assert len(waits) == 3


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    "value",
    [
        {"type": "AdaptiveCard", "body": [{"text": "x", "size": 3, "wrap": True, "f": 0.5, "n": None}]},
        [1, "two", [3.0, {"k": False}]],
        {"when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "colour": Colour.RED},
        {1: "int key"},
    ],
)
def test_the_serializer_fast_path_gives_what_msrest_gives(value: Any) -> None:
    connector_speedups.install()
    fast = Serializer().serialize_object(value)
    original = Serializer.serialize_object.msrest_original  # type: ignore[attr-defined]
    assert fast == original(Serializer(), value)


def test_only_plain_json_takes_the_fast_path() -> None:
    assert plain_json({"a": [1, 2.5, "x", None, True, {"b": []}]})
    assert not plain_json({"a": Colour.RED})
    assert not plain_json({1: "x"})
    assert not plain_json([dt.date(2026, 1, 1)])


async def test_the_client_cache_builds_once_per_key_and_forgets_the_oldest() -> None:
    cache: ClientCache[object] = ClientCache(max_entries=2)

    async def build() -> object:
        return object()

    first = await cache.get(("app", "https://a"), build)
    assert await cache.get(("app", "https://a"), build) is first
    await cache.get(("app", "https://b"), build)
    await cache.get(("app", "https://c"), build)
    assert cache.built == 3
    assert len(cache) == 2
    assert await cache.get(("app", "https://a"), build) is not first  # evicted, rebuilt


async def test_a_missing_path_parameter_still_fails_before_sending(
    connector: tuple[Connector, str], sender: Any
) -> None:
    fake, url = connector
    client = _client(url, sender[0])
    with pytest.raises(ValueError, match="No value"):
        await client.conversations.reply_to_activity(None, "act-1", _card_reply())
    assert fake.seen == []


class _IssuedCredentials(MicrosoftAppCredentials):  # type: ignore[misc]
    """The SDK's credentials with their token source (MSAL, against Entra) replaced by a fixed token."""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return "issued-token"


async def test_replies_carry_the_bots_token_when_it_has_an_app_id(
    connector: tuple[Connector, str], sender: Any
) -> None:
    fake, url = connector
    credentials = _IssuedCredentials("11111111-2222-3333-4444-555555555555", "secret")
    client = use_sender(ConnectorClient(credentials, base_url=url), sender[0])
    await client.conversations.reply_to_activity("a:conv", "act-1", _card_reply())
    assert fake.seen[0][3] == "Bearer issued-token"
