"""Per-turn CPU costs of botbuilder's connector clients (msrest underneath), removed; behaviour kept.

1. msrest's retry scan. Every msrest configuration builds a `ClientRetryPolicy` whose retry status
   codes are `[i for i in range(999) if i not in self.safe_codes]` with `safe_codes` a 501-item list:
   about 3.5 ms of CPU per client. Making `safe_codes` a frozenset gives the same codes in the same
   order (only `in` reads it) in microseconds (`install`).
2. A thread per reply. msrest's default async pipeline sends with `requests` on the event loop's thread
   pool (`loop.run_in_executor`), and every new client brings a new `requests.Session`, so a new TCP
   connection per turn. `AiohttpSender` sends on one shared aiohttp session instead; `connector_pipeline`
   builds the pipeline botbuilder's `AsyncBfPipeline` builds, with that sender and a signing policy that
   asks the credentials for the header exactly as msrest's `AsyncRequestsCredentialsPolicy` does.
3. msrest's generic serializer on JSON. An outgoing card (`Attachment.content`, typed `object`) is
   walked node by node by `Serializer.serialize_object`, several calls per node: milliseconds per card.
   For a tree of plain dicts, lists, str, int, float, bool and None its output equals its input, so
   such a tree is passed through as is (`install`); anything else still takes msrest's path.
4. A client per activity. CloudAdapter asks its connector factory for a new ConnectorClient (and the
   authentication for a new UserTokenClient) on every activity and proactive send; a client holds no
   per-turn state (credentials, base URL, serializers), so `ClientCache` keeps them per key.

The retries msrest's pipeline did through urllib3 are kept in `AiohttpSender`: up to 3 retries of a
connection that failed (any method) and of 408/5xx answers (except 501 and 505) to idempotent methods,
backoff 0, 1.6, 3.2 s, or the `Retry-After` of a 503 (urllib3's `Retry` as msrest configures it:
total=3, backoff_factor=0.8, `respect_retry_after_header`). 429 was never retried there: the proactive
sender handles it. When the retries run out the last answer is returned (msrest raised `RetryError`
without the status), so callers see its status.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import urllib.request
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import aiohttp
import requests
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, ActivityTypes, DeliveryModes, ResourceResponse
from msrest.exceptions import ClientRequestError
from msrest.pipeline import Request, Response
from msrest.pipeline.async_abc import AsyncHTTPPolicy, AsyncHTTPSender, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.serialization import Serializer
from msrest.universal_http import ClientRequest
from msrest.universal_http import requests as msrest_requests
from msrest.universal_http.aiohttp import AioHttpClientResponse

log = logging.getLogger(__name__)

# urllib3's Retry as msrest's ClientRetryPolicy sets it up (msrest/universal_http/requests.py).
RETRIES = 3
BACKOFF_FACTOR = 0.8
BACKOFF_MAX = 90.0
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
_SAFE_STATUS = frozenset([i for i in range(500) if i != 408] + [501, 505])
_RETRY_AFTER_STATUS = frozenset({413, 429, 503})
TIMEOUT_SECONDS = 100.0  # msrest's default connection timeout

Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


def install() -> None:
    """Idempotent; what msrest builds and sends is unchanged."""
    policy = msrest_requests.ClientRetryPolicy
    if not isinstance(policy.safe_codes, frozenset):
        # Declared a list, but only ever tested with `in`: a set answers the same.
        policy.safe_codes = frozenset(policy.safe_codes)  # type: ignore[assignment]
    if not getattr(Serializer.serialize_object, "_plain_json_fast_path", False):
        Serializer.serialize_object = _fast_serialize_object(Serializer.serialize_object)  # type: ignore[method-assign]


_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain_json(value: object) -> bool:
    """True when `value` is built only of dicts with str keys, lists and JSON scalars (exact types:
    a subclass such as an enum is left to msrest, which writes an enum's value)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _JSON_SCALARS:
            continue
        if kind is dict:
            for key, inner in item.items():  # type: ignore[attr-defined]
                if type(key) is not str:
                    return False
                stack.append(inner)
        elif kind is list:
            stack.extend(item)  # type: ignore[arg-type]
        else:
            return False
    return True


def _fast_serialize_object(original: Callable[..., Any]) -> Callable[..., Any]:
    def serialize_object(self: Serializer, attr: Any, **kwargs: Any) -> Any:
        # msrest maps such a tree to an equal one (str(x) of a str, float(x) of a float, ...).
        if type(attr) in (dict, list) and plain_json(attr):
            return attr
        return original(self, attr, **kwargs)

    serialize_object._plain_json_fast_path = True  # type: ignore[attr-defined]
    serialize_object.msrest_original = original  # type: ignore[attr-defined]
    return serialize_object


class _HeaderCarrier:
    """What `AppCredentials.signed_session` writes to: only its `headers` are read or written."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}


class SignRequests(AsyncHTTPPolicy[ClientRequest, Any]):
    """Adds the credentials' Authorization header (or none: anonymous) to each request.

    Same call as msrest's requests policy (`signed_session`, which returns a cached MSAL token or
    fetches one), onto a carrier instead of a shared requests.Session."""

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    async def send(self, request: Request[ClientRequest], **kwargs: Any) -> Response[ClientRequest, Any]:
        carrier = _HeaderCarrier()
        try:
            self._credentials.signed_session(carrier)
        except requests.RequestException as exc:
            # msrest wraps a failed token request the same way.
            raise ClientRequestError("Error occurred in request.") from exc
        auth = carrier.headers.get("Authorization")
        if auth:
            request.http_request.headers["Authorization"] = auth
        assert self.next is not None  # the pipeline links every policy to the next step
        return await self.next.send(request, **kwargs)


class AiohttpSender(AsyncHTTPSender[ClientRequest, Any]):
    """msrest's last pipeline step, on one aiohttp session for every client of the process.

    The session is made on first use, inside the running loop, and replaced if that loop has ended
    (tests run several loops in one process)."""

    def __init__(self, sleep: Sleep = asyncio.sleep) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sleep = sleep
        self._proxies: dict[tuple[str, str], str | None] = {}

    async def __aenter__(self) -> AiohttpSender:
        return self

    async def __aexit__(self, *exc_details: object) -> None:
        # Clients share this sender: a client's context manager must not close it (`close` does).
        return None

    def build_context(self) -> None:
        return None

    def _current_session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(sock_connect=TIMEOUT_SECONDS, sock_read=TIMEOUT_SECONDS)
            )
            self._loop = loop
        return self._session

    def _proxy_for(self, url: str) -> str | None:
        """The proxy from the environment (HTTPS_PROXY, NO_PROXY...), as requests honoured it, looked
        up once per origin: aiohttp's `trust_env` looks it up in a thread for every request."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.hostname or "")
        if origin not in self._proxies:
            proxies = urllib.request.getproxies()
            proxy = proxies.get(parts.scheme)
            if proxy and urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
                parts.hostname or "", proxies
            ):
                proxy = None
            self._proxies[origin] = proxy or None
        return self._proxies[origin]

    async def close(self) -> None:
        if (
            self._session is not None
            and not self._session.closed
            and self._loop is asyncio.get_running_loop()
        ):
            await self._session.close()
        self._session = None

    async def send(self, request: Request[ClientRequest], **config: Any) -> Response[ClientRequest, Any]:
        http: ClientRequest = request.http_request
        method = str(http.method).upper()
        if http.files:
            raise ClientRequestError("multipart uploads are not used by this bot")
        retries = 0
        while True:
            try:
                response = await self._send_once(http, method)
            except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
                # Like urllib3's connect retries; a dropped keep-alive connection is its read retry.
                if retries >= RETRIES or (
                    isinstance(exc, aiohttp.ServerDisconnectedError) and method not in IDEMPOTENT
                ):
                    raise ClientRequestError(f"Error occurred in request: {type(exc).__name__}") from exc
                retries += 1
                await self._sleep(_backoff(retries))
                continue
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ClientRequestError(f"Error occurred in request: {type(exc).__name__}") from exc
            status = response.status_code
            if retries >= RETRIES or method not in IDEMPOTENT or status in _SAFE_STATUS:
                return Response(request, response)
            retries += 1
            await self._sleep(_retry_wait(response, retries))

    async def _send_once(self, http: ClientRequest, method: str) -> _Answer:
        session = self._current_session()
        headers = {str(k): str(v) for k, v in http.headers.items()}
        # aiohttp computes the length itself; a stale one from msrest would be wrong after re-encoding.
        headers.pop("Content-Length", None)
        raw = await session.request(
            method, http.url, headers=headers, data=http.data, proxy=self._proxy_for(http.url)
        )
        response = _Answer(http, raw)
        try:
            await response.load_body()
        finally:
            raw.release()
        return response


class _Answer(AioHttpClientResponse):
    """msrest's aiohttp response, except that an empty body is an empty body (msrest raises)."""

    def body(self) -> bytes:
        return self._body if self._body is not None else b""


def _backoff(retry: int) -> float:
    # urllib3: no wait before the first retry, then factor * 2 ** (n - 1), capped.
    return 0.0 if retry <= 1 else min(BACKOFF_MAX, BACKOFF_FACTOR * 2 ** (retry - 1))


def _retry_wait(response: _Answer, retry: int) -> float:
    if response.status_code in _RETRY_AFTER_STATUS:
        raw = response.headers.get("Retry-After")
        try:
            return max(0.0, float(raw)) if raw is not None else _backoff(retry)
        except ValueError:
            return _backoff(retry)
    return _backoff(retry)


def connector_pipeline(config: Any, sender: AiohttpSender) -> AsyncPipeline[ClientRequest, Any]:
    """botframework's AsyncBfPipeline (aiohttp_bf_pipeline.py), with our signing policy and sender."""
    policies: list[Any] = [config.user_agent_policy, RawDeserializer(), config.http_logger_policy]
    if config.credentials:
        policies.insert(1, SignRequests(config.credentials))
    return AsyncPipeline(policies, sender)


def use_sender(client: Any, sender: AiohttpSender) -> Any:
    """Point an msrest client (ConnectorClient, TokenApiClient) at `sender`; returns the client."""
    service_client = client._client  # msrest's ServiceClientAsync: its config holds the pipeline
    service_client.config.pipeline = connector_pipeline(service_client.config, sender)
    # msrest validates a body against its models' `_validation` rules before serializing it: a walk of
    # the whole activity (a third of a reply's serialization) that cannot fail, since no Bot Framework
    # model declares a rule. A missing path parameter still fails (serialize_data refuses None).
    client._serialize.client_side_validation = False
    return client


class ClientCache(Generic[T]):
    """A bounded map of clients by key; the least recently used goes first past `max_entries`."""

    def __init__(self, max_entries: int = 256) -> None:
        self._max = max_entries
        self._items: OrderedDict[tuple[str, ...], T] = OrderedDict()
        self.built = 0  # clients made (for tests)

    async def get(self, key: tuple[str, ...], build: Callable[[], Awaitable[T]]) -> T:
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            return item
        # Two first turns at once may both build; the later one wins, the other is simply dropped.
        item = await build()
        self.built += 1
        self._items[key] = item
        while len(self._items) > self._max:
            self._items.popitem(last=False)
        return item

    def __len__(self) -> int:
        return len(self._items)


class ShallowCopyTurnContext(TurnContext):  # type: ignore[misc]
    """botbuilder's TurnContext, except that an outgoing activity is copied shallowly, not deeply.

    botbuilder deep-copies each activity before addressing it, so that the caller's object is not
    changed: for a card that is the whole card, a millisecond or more per reply. Addressing sets only
    top-level attributes (channel, conversation, from, recipient, replyToId, id), which a shallow copy
    keeps off the caller's object just the same; nothing below mutates the card itself (the send
    handlers registered here only read). The rest is botbuilder 4.17's `send_activities` as is."""

    async def send_activities(self, activities: list[Activity]) -> list[ResourceResponse]:
        sent_non_trace_activity = False
        ref = TurnContext.get_conversation_reference(self.activity)

        def activity_validator(activity: Activity) -> Activity:
            nonlocal sent_non_trace_activity
            if not getattr(activity, "type", None):
                activity.type = ActivityTypes.message
            if activity.type != ActivityTypes.trace:
                sent_non_trace_activity = True
            if not activity.input_hint:
                activity.input_hint = "acceptingInput"
            activity.id = None
            return activity

        output = [
            activity_validator(TurnContext.apply_conversation_reference(copy.copy(act), ref))
            for act in activities
        ]

        async def logic() -> list[ResourceResponse]:
            nonlocal sent_non_trace_activity
            if self.activity.delivery_mode == DeliveryModes.expect_replies:
                responses = []
                for activity in output:
                    self.buffered_reply_activities.append(activity)
                    if activity.type == ActivityTypes.invoke_response:
                        self.turn_state[TurnContext._INVOKE_RESPONSE_KEY] = activity
                    responses.append(ResourceResponse())
                if sent_non_trace_activity:
                    self.responded = True
                return responses
            responses = await self.adapter.send_activities(self, output)
            if sent_non_trace_activity:
                self.responded = True
            return list(responses)

        result: list[ResourceResponse] = await self._emit(self._on_send_activities, output, logic())
        return result
