"""A fake Bot Connector for the scenario tests: the REST API the bot calls, on a real port, recording it all.

Everything the bot sends (replies, proactive messages, card updates, new channel threads) reaches
`FakeConnector`, which answers like the Bot Connector (https://learn.microsoft.com/azure/bot-service/rest-api/bot-framework-rest-connector-api-reference)
and keeps each call as an `Outbound` the tests read cards and texts from.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.cards import of_type, walk_card

__all__ = ["FakeConnector", "Outbound"]


@dataclass
class Outbound:
    """One call the bot made to the Bot Connector."""

    kind: str  # "send" (new activity), "reply", "update", "delete", "create" (new conversation / channel thread)
    conversation_id: str
    activity_id: str
    activity: dict[str, Any]
    reply_to_id: str = ""
    at: float = 0.0  # loop time

    @property
    def text(self) -> str:
        return str(self.activity.get("text") or "")

    @property
    def card(self) -> dict[str, Any] | None:
        for attachment in self.activity.get("attachments") or []:
            if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
                content = attachment.get("content")
                return content if isinstance(content, dict) else None
        return None

    @property
    def card_text(self) -> str:
        """Every text a person reads on the card (TextBlocks, TextRuns, facts, choice titles, action titles)."""
        parts: list[str] = []
        for node in walk_card(self.card or {}):
            for key in ("text", "title", "value", "label", "placeholder"):
                if isinstance(node.get(key), str) and (key != "value" or node.get("type") != "Input.Text"):
                    parts.append(node[key])
        return "\n".join(parts)

    def actions(self) -> list[dict[str, Any]]:
        return of_type(self.card or {}, "Action.")

    def action(self, title: str) -> dict[str, Any]:
        for action in self.actions():
            if action.get("title") == title:
                return action
        raise AssertionError(f"no action {title!r} on the card; it has {[a.get('title') for a in self.actions()]}")

    def action_url(self, title: str) -> str:
        return str(self.action(title)["url"])

    def has_action(self, title: str) -> bool:
        return any(a.get("title") == title for a in self.actions())

    def inputs(self) -> dict[str, dict[str, Any]]:
        return {n["id"]: n for n in of_type(self.card or {}, "Input.") if isinstance(n.get("id"), str)}


# The error codes the Bot Connector answers with, per status.
_FAULT_CODES = {
    403: "BotNotInConversationRoster",
    404: "ConversationNotFound",
    412: "PreconditionFailed",
    413: "MessageSizeTooBig",
    429: "TooManyRequests",
    502: "BadGateway",
    504: "GatewayTimeout",
}


class FakeConnector:
    """The Bot Connector REST API as the bot uses it, on a real port; records every call.

    POST /v3/conversations -> 201 {"id", "activityId"} (a channel thread: `<channel>;messageid=<id>`);
    POST .../activities[/{replyTo}] -> 201 {"id"}; PUT .../activities/{id} -> 200 {"id"}; DELETE -> 200;
    GET .../members[/{id}], .../pagedmembers, /v3/teams/{id}[/conversations] from `roster`.
    `fail_next(status, times, retry_after)` answers the next sends/updates with an error instead.
    """

    def __init__(self) -> None:
        self.outbound: list[Outbound] = []
        self.roster: list[dict[str, Any]] = []
        self._faults: list[tuple[int, float | None]] = []
        self._changed = asyncio.Condition()
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v3/conversations", self._create)
        app.router.add_post("/v3/conversations/{cid}/activities", self._send)
        app.router.add_post("/v3/conversations/{cid}/activities/{aid}", self._send)
        app.router.add_put("/v3/conversations/{cid}/activities/{aid}", self._update)
        app.router.add_delete("/v3/conversations/{cid}/activities/{aid}", self._delete)
        app.router.add_get("/v3/conversations/{cid}/members", self._members)
        app.router.add_get("/v3/conversations/{cid}/pagedmembers", self._paged)
        app.router.add_get("/v3/conversations/{cid}/members/{mid}", self._member)
        app.router.add_get("/v3/teams/{tid}", self._team)
        app.router.add_get("/v3/teams/{tid}/conversations", self._channels)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, times: int = 1, retry_after: float | None = None) -> None:
        self._faults += [(status, retry_after)] * times

    def _fault(self) -> web.Response | None:
        if not self._faults:
            return None
        status, retry_after = self._faults.pop(0)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        code = _FAULT_CODES.get(status, "ServiceError")
        return web.json_response({"error": {"code": code, "message": "injected"}}, status=status, headers=headers)

    def _new_id(self) -> str:
        self._counter += 1
        return f"{1700000000000 + self._counter}"

    async def _record(self, entry: Outbound) -> None:
        entry.at = asyncio.get_running_loop().time()
        async with self._changed:
            self.outbound.append(entry)
            self._changed.notify_all()

    async def _create(self, request: web.Request) -> web.Response:
        if (fault := self._fault()) is not None:
            return fault
        body = await request.json()
        aid = self._new_id()
        channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
        cid = f"{channel};messageid={aid}" if channel else f"a:created-{aid}"
        activity = body.get("activity") or {}
        await self._record(Outbound("create", cid, aid, {**activity, "id": aid}))
        return web.json_response({"id": cid, "activityId": aid, "serviceUrl": self.url}, status=201)

    async def _send(self, request: web.Request) -> web.Response:
        if (fault := self._fault()) is not None:
            return fault
        body = await request.json()
        aid = self._new_id()
        reply_to = request.match_info.get("aid", "")
        kind = "reply" if reply_to else "send"
        await self._record(Outbound(kind, request.match_info["cid"], aid, {**body, "id": aid}, reply_to))
        return web.json_response({"id": aid}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        if (fault := self._fault()) is not None:
            return fault
        body = await request.json()
        aid = request.match_info["aid"]
        await self._record(Outbound("update", request.match_info["cid"], aid, {**body, "id": aid}))
        return web.json_response({"id": aid}, status=200)

    async def _delete(self, request: web.Request) -> web.Response:
        aid = request.match_info["aid"]
        await self._record(Outbound("delete", request.match_info["cid"], aid, {}))
        return web.json_response({}, status=200)

    async def _members(self, request: web.Request) -> web.Response:
        return web.json_response(self.roster)

    async def _paged(self, request: web.Request) -> web.Response:
        return web.json_response({"members": self.roster})

    async def _member(self, request: web.Request) -> web.Response:
        wanted = request.match_info["mid"]
        for member in self.roster:
            if wanted in (member.get("id"), member.get("aadObjectId")):
                return web.json_response(member)
        return web.json_response({"error": {"code": "MemberNotFoundInConversation"}}, status=404)

    async def _team(self, request: web.Request) -> web.Response:
        return web.json_response({"id": request.match_info["tid"], "name": "Finance", "aadGroupId": str(uuid.uuid4())})

    async def _channels(self, request: web.Request) -> web.Response:
        return web.json_response({"conversations": [{"id": request.match_info["tid"], "name": "General"}]})

    # ---- reading what the bot sent ------------------------------------------------------------------

    def mark(self) -> int:
        """A position in the log: `wait_for(..., since=mark)` looks only at what came after."""
        return len(self.outbound)

    def latest(self, activity_id: str) -> Outbound | None:
        """The current version of an activity (its last send or update)."""
        for entry in reversed(self.outbound):
            if entry.activity_id == activity_id and entry.kind != "delete":
                return entry
        return None

    def texts(self, since: int = 0) -> list[str]:
        return [e.text for e in self.outbound[since:] if e.kind in ("send", "reply", "create") and e.text]

    def sent_cards(self, since: int = 0) -> list[Outbound]:
        return [e for e in self.outbound[since:] if e.kind in ("send", "reply", "create") and e.card is not None]

    async def wait_for(
        self, predicate: Callable[[Outbound], bool], *, since: int = 0, timeout: float = 10.0
    ) -> Outbound:
        """The first call (from `since` on) that matches; waits for it up to `timeout` seconds."""

        def find() -> Outbound | None:
            return next((e for e in self.outbound[since:] if predicate(e)), None)

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: find() is not None), timeout)
            except TimeoutError:
                seen = [(e.kind, e.text[:80] or e.card_text[:80]) for e in self.outbound[since:]]
                raise AssertionError(f"nothing matched within {timeout}s; the bot sent {seen}") from None
        found = find()
        assert found is not None
        return found

    async def wait_for_text(self, fragment: str, *, since: int = 0, timeout: float = 10.0) -> Outbound:
        return await self.wait_for(
            lambda e: e.kind in ("send", "reply", "create") and fragment in e.text, since=since, timeout=timeout
        )

    async def wait_for_card(self, fragment: str, *, since: int = 0, timeout: float = 10.0) -> Outbound:
        """A card (new or updated) whose text contains `fragment`."""
        return await self.wait_for(
            lambda e: e.card is not None and fragment in e.card_text, since=since, timeout=timeout
        )
