"""Bad input at /api/messages (the whole product from app.create_app, in anonymous mode):
whatever arrives, the answer is never a 5xx and a turn never crashes; malformed JSON is 400, a body over
MAX_BODY_BYTES is 413, and an activity type the bot does not know is accepted politely (2xx) without
anything being sent. The bot's replies go to a local fake Bot Connector, which records them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.security.endpoint_app import Endpoint, FakeConnector, activity, build_product

EXAMPLES = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KNOWN_TYPES = {
    "message", "contactRelationUpdate", "conversationUpdate", "typing", "endOfConversation", "event",
    "invoke", "deleteUserData", "messageUpdate", "messageDelete", "installationUpdate", "messageReaction",
    "suggestion", "trace", "handoff", "command", "commandResult",
}  # fmt: skip
LIMIT = 64 * 1024


class Probe:
    def __init__(self, endpoint: Endpoint, connector: FakeConnector, client: TestClient) -> None:  # type: ignore[type-arg]
        self.endpoint = endpoint
        self.connector = connector
        self.client = client

    async def post(self, body: bytes, content_type: str = "application/json") -> int:
        response = await self.client.post("/api/messages", data=body, headers={"Content-Type": content_type})
        await response.read()
        return response.status


@pytest.fixture
async def probe(tmp_path: Path) -> AsyncIterator[Probe]:
    """The whole product (app.create_app, anonymous mode, sandbox mode), replies to a fake connector."""
    connector = FakeConnector()
    await connector.start()
    endpoint = await build_product(tmp_path, max_body_bytes=LIMIT)
    client = TestClient(TestServer(endpoint.app))
    await client.start_server()
    try:
        yield Probe(endpoint, connector, client)
    finally:
        await client.close()
        await connector.stop()


@pytest.fixture
def turn_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Records of turns that crashed (the adapter's on_turn_error) or requests aiohttp failed on."""
    caplog.set_level(logging.WARNING)
    return caplog.records


def crashed(records: list[logging.LogRecord]) -> list[str]:
    return [
        r.getMessage()
        for r in records
        if r.levelno >= logging.ERROR
        and (r.name.startswith(("bot.", "aiohttp")) or "Unhandled" in r.getMessage())
    ]


def said(sent: dict[str, Any]) -> bool:
    """The bot's answer has something in it: text or a card."""
    return bool(sent.get("text") or sent.get("attachments"))


# ---- strategies ------------------------------------------------------------------------------------

# Text with the nasty parts over-represented: control characters, NUL, surrogates-free unicode, RTL marks.
NASTY_TEXT = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "So"]), max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "sync",
            "/sync now",
            "sync status \x00",
            "<at>x</at>",
            "\u202e\u0000",
            "sync settings " + "A" * 5000,
            "%s%n",
            "{{card}}",
            "'; DROP TABLE conversations;--",
        ]
    ),
)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), NASTY_TEXT)
JSON_VALUE = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(NASTY_TEXT, inner, max_size=4),
    max_leaves=12,
)
# serviceUrl only ever points at our fake connector or at something unusable: a fuzzer must not make the
# bot call the internet (in anonymous mode it replies wherever serviceUrl says, and with no serviceUrl
# at all botbuilder tries a public default for about ten seconds).
SERVICE_URL_NOISE = st.sampled_from([5, [], {"url": 1}, "not a url", "ftp://127.0.0.1:1/"])
FIELDS = [
    "type", "id", "timestamp", "localTimestamp", "channelId", "from", "conversation", "recipient", "text",
    "textFormat", "locale", "speak", "inputHint", "summary", "attachments", "entities", "channelData",
    "action", "replyToId", "label", "valueType", "value", "name", "relatesTo", "code", "membersAdded",
    "membersRemoved", "topicName", "importance", "deliveryMode", "listenFor", "semanticAction",
]  # fmt: skip


@st.composite
def activities(draw: st.DrawFn) -> dict[str, Any]:
    """A plausible activity with some fields replaced by anything, some removed, some added."""
    base_type = draw(st.sampled_from(sorted(KNOWN_TYPES)) | NASTY_TEXT)
    body = activity(base_type if base_type else "message", text=draw(NASTY_TEXT), value=draw(JSON_VALUE))
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=6, unique=True)):
        body[name] = draw(JSON_VALUE)
    for name in draw(st.lists(st.sampled_from(sorted(body)), max_size=3, unique=True)):
        body.pop(name, None)
    body.update(draw(st.dictionaries(NASTY_TEXT, JSON_VALUE, max_size=3)))
    return body


async def _use_connector(body: dict[str, Any], probe: Probe, service_url: Any) -> dict[str, Any]:
    body = dict(body)
    body["serviceUrl"] = probe.connector.url if service_url is None else service_url
    return body


# ---- properties ------------------------------------------------------------------------------------


@EXAMPLES
@given(body=activities(), service_url=st.none() | SERVICE_URL_NOISE)
async def test_random_activities_never_get_a_5xx(
    probe: Probe, turn_errors: list[logging.LogRecord], body: dict[str, Any], service_url: Any
) -> None:
    body = await _use_connector(body, probe, service_url)
    status = await probe.post(json.dumps(body).encode())
    event(f"status {status}")
    assert status < 500, (status, body)
    assert status in {200, 201, 400, 401, 404, 412}, (status, body)
    assert crashed(turn_errors) == [], body


@EXAMPLES
@given(raw=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
async def test_a_body_that_is_not_an_activity_gets_400(probe: Probe, raw: bytes) -> None:
    try:
        parsed = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        parsed = None
    status = await probe.post(raw)
    if isinstance(parsed, dict) and isinstance(parsed.get("type"), str) and parsed["type"]:
        assert status < 500
    else:
        assert status == 400, raw


@pytest.mark.parametrize(
    "raw",
    [
        b"", b"{", b'{"type": "message"', b"{'type': 'message'}", b'{"type": "message",}', b"null", b"true",
        b'"message"', b"[]", b'[{"type": "message"}]', b'{"type": ""}', b'{"type": null}', b'{"type": ["x"]}',
        b"\xef\xbb\xbf{\"type\": \"message\"}", b'{"type": "message", "text": "\xff\xfe"}', b"NaN",
        b'{"type": "message", "from": "not an object"}', b'{"type": "message", "conversation": 5}',
        b'{"type": "message", "attachments": "x"}', b'{"type": "message", "timestamp": 12}',
    ],
)  # fmt: skip
async def test_malformed_activity_json_gets_400(probe: Probe, raw: bytes) -> None:
    assert await probe.post(raw) == 400
    assert probe.connector.sent == []


@EXAMPLES
@given(
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]),
    charset=st.sampled_from([None, "utf-8", "utf-16", "latin-1", "no-such-charset", ""]),
    text=NASTY_TEXT,
)
async def test_any_encoding_and_declared_charset_is_a_4xx_or_a_turn(
    probe: Probe, turn_errors: list[logging.LogRecord], encoding: str, charset: str | None, text: str
) -> None:
    """A body in another encoding than it declares (or with a BOM) is refused as 400, never a 500."""
    document = json.dumps(activity("message", text=text, serviceUrl=probe.connector.url), ensure_ascii=False)
    try:
        raw = document.encode(encoding)
    except UnicodeEncodeError:
        raw = document.encode("utf-8")
    content_type = "application/json" if charset is None else f"application/json; charset={charset}"
    status = await probe.post(raw, content_type)
    assert status in {200, 201, 400}, (status, encoding, charset)
    assert crashed(turn_errors) == []


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "", "application/xml"]
)
async def test_a_body_that_is_not_json_by_its_media_type_is_refused(probe: Probe, content_type: str) -> None:
    status = await probe.post(json.dumps(activity("message", text="sync help")).encode(), content_type)
    assert status in {400, 415}
    assert probe.connector.sent == []


@EXAMPLES
@given(excess=st.integers(min_value=1, max_value=3 * LIMIT), chunked=st.booleans())
async def test_a_body_over_the_limit_gets_413(probe: Probe, excess: int, chunked: bool) -> None:
    prefix = json.dumps(activity("message", serviceUrl=probe.connector.url))[:-1] + ', "text": "'
    padding = LIMIT + excess - len(prefix) - 2
    body = (prefix + "x" * max(padding, 0) + '"}').encode()
    assert len(body) > LIMIT
    if chunked:

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 8192):
                yield body[start : start + 8192]

        response = await probe.client.post(
            "/api/messages", data=chunks(), headers={"Content-Type": "application/json"}
        )
        status = response.status
    else:
        status = await probe.post(body)
    assert status == 413
    assert probe.connector.sent == []


async def test_a_body_just_under_the_limit_is_processed(probe: Probe) -> None:
    """The 413 is about size, not content: the same activity one byte under the limit gets a reply."""
    prefix = json.dumps(activity("message", serviceUrl=probe.connector.url))[:-1] + ', "text": "sync help '
    body = (prefix + " " * (LIMIT - len(prefix) - 2) + '"}').encode()
    assert len(body) == LIMIT
    assert await probe.post(body) in {200, 201}
    assert len(probe.connector.sent) == 1
    assert said(probe.connector.sent[0])


@settings(EXAMPLES, max_examples=60)
@given(
    kind=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() and t not in KNOWN_TYPES),
    extra=st.dictionaries(st.sampled_from(["name", "value", "text", "channelData"]), JSON_VALUE, max_size=3),
)
async def test_unknown_activity_types_are_accepted_politely(
    probe: Probe, turn_errors: list[logging.LogRecord], kind: str, extra: dict[str, Any]
) -> None:
    before = len(probe.connector.sent)
    body = activity(kind, serviceUrl=probe.connector.url, **extra)
    status = await probe.post(json.dumps(body).encode())
    assert status in {200, 201}, (status, body)
    assert len(probe.connector.sent) == before, "nothing is sent for an activity type the bot does not know"
    assert crashed(turn_errors) == []


async def test_the_fuzzed_endpoint_really_answers(probe: Probe) -> None:
    """The control case: a good message gets the product's reply through the fake connector, so the
    silence asserted above is the bot choosing not to answer, not a broken wire."""
    status = await probe.post(
        json.dumps(activity("message", text="sync help", serviceUrl=probe.connector.url)).encode()
    )
    assert status in {200, 201}
    assert len(probe.connector.sent) == 1
    assert said(probe.connector.sent[0])


@pytest.mark.parametrize(
    "name", ["unknown/thing", "", "composeExtension/query", "task/fetch", "config/fetch"]
)
@pytest.mark.parametrize("value", [{"x": 1}, "not an object", None])
async def test_an_unhandled_invoke_is_acknowledged_politely(
    probe: Probe, turn_errors: list[logging.LogRecord], name: str, value: Any
) -> None:
    """FOUND and fixed in bot/teams/handler.py: an invoke the bot does not handle got botbuilder's 501
    (TeamsActivityHandler's default), and a message-extension invoke with a value botbuilder cannot read
    crashed its deserializer. Like an unknown activity type, it is now acknowledged (200) and nothing is
    sent: the manifest declares no message extension, task module or config page, so it is not for us."""
    body = activity("invoke", name=name, value=value, serviceUrl=probe.connector.url)
    status = await probe.post(json.dumps(body).encode())
    assert status == 200
    assert probe.connector.sent == []
    assert crashed(turn_errors) == []


async def test_the_sign_in_invoke_is_still_the_bots_own(probe: Probe) -> None:
    """The control case for the polite answer above: an invoke the bot does handle still gets its own
    answer (a verifyState without a state is refused), so the 200s are not a blanket."""
    body = activity("invoke", name="signin/verifyState", value={"x": 1}, serviceUrl=probe.connector.url)
    assert await probe.post(json.dumps(body).encode()) == 400


@pytest.mark.parametrize(
    "value",
    [
        {"action": {"type": "Action.Execute", "verb": "some_verb", "data": {"x": 1}}},
        {"action": {"type": "Action.Execute", "verb": "some_verb"}},
        {"action": {"type": "Action.Execute", "verb": "", "data": {}}},
        {"action": {"type": "Action.Submit", "verb": "some_verb"}},
        {},
        None,
    ],
)
async def test_an_adaptive_card_action_invoke_gets_an_answer_not_a_500(probe: Probe, value: Any) -> None:
    """FOUND and fixed in bot/teams/endpoint.py: botbuilder's CloudAdapter.process serialized an invoke's
    answer twice, so every adaptiveCard/action invoke (Action.Execute) got a 500; and botbuilder's own
    400 answers to a malformed one hold an Exception object its serializer cannot write (500 too)."""
    body = activity("invoke", name="adaptiveCard/action", value=value, serviceUrl=probe.connector.url)
    response = await probe.client.post("/api/messages", json=body)
    assert response.status in (200, 400)
    assert response.content_type == "application/json"
    await response.read()
    assert probe.connector.sent == []


async def test_a_well_formed_action_execute_reaches_its_verb(probe: Probe) -> None:
    """FOUND and fixed in bot/teams/handler.py: the verb was read with getattr(action, "verb") while
    botbuilder passes `action` as a dict, so every Action.Execute was answered statusCode 400. Now the
    verb's handler runs: "run the command again" with `sync help` posts the help to the chat."""
    value = {
        "action": {"type": "Action.Execute", "verb": "retry_command", "data": {"command_text": "sync help"}},
        "trigger": "manual",
    }
    body = activity("invoke", name="adaptiveCard/action", value=value, serviceUrl=probe.connector.url)
    response = await probe.client.post("/api/messages", json=body)
    assert response.status == 200
    answer = await response.json()
    assert answer["statusCode"] == 200  # the card invoke protocol's own status
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert len(probe.connector.sent) == 1, "the verb's handler ran and answered in the chat"
    assert said(probe.connector.sent[0])


async def test_an_action_execute_the_validator_refuses_is_told_on_the_card(
    probe: Probe, turn_errors: list[logging.LogRecord]
) -> None:
    """A verb whose data the card models refuse: the person is told why in the invoke's answer (as an
    Action.Submit would be told in the chat), not a crashed turn."""
    value = {"action": {"type": "Action.Execute", "verb": "retry_command", "data": {"command_text": 5}}}
    body = activity("invoke", name="adaptiveCard/action", value=value, serviceUrl=probe.connector.url)
    response = await probe.client.post("/api/messages", json=body)
    assert response.status == 200
    answer = await response.json()
    assert answer["statusCode"] == 200
    assert answer["type"] == "application/vnd.microsoft.activity.message"
    assert answer["value"].startswith("⚠️")
    assert probe.connector.sent == []
    assert crashed(turn_errors) == []


@pytest.mark.parametrize("action", ["x", 5, ["Action.Execute"], None])
async def test_an_adaptive_card_action_with_a_non_object_action_gets_a_400(
    probe: Probe, turn_errors: list[logging.LogRecord], action: Any
) -> None:
    """FOUND and fixed in bot/teams/handler.py: an `action` that is not an object crashed botbuilder's value
    parsing inside the turn (501 and an error log). The shape is checked first: 400 with the card invoke
    protocol's error body."""
    body = activity(
        "invoke", name="adaptiveCard/action", value={"action": action}, serviceUrl=probe.connector.url
    )
    response = await probe.client.post("/api/messages", json=body)
    assert response.status == 400
    answer = await response.json()
    assert answer["statusCode"] == 400
    assert answer["type"] == "application/vnd.microsoft.error"
    assert answer["value"]["code"] == "BadRequest"
    assert probe.connector.sent == []
    assert crashed(turn_errors) == []
