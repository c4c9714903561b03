"""Fault switches: answer the next n requests with an error, drop the connection, or add latency.

Rules queue up in the order they were set; a request takes the first rule whose path prefix matches
(case-insensitive, like Xero's paths) and uses up one of its n. The control API is never affected.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web

from sandbox.fault_rules import Rule, RuleQueue
from sandbox.xero import wire


@dataclass
class _Rule(Rule):
    status: int = 0  # 0: drop the connection
    retry_after: int | None = None
    problem: str = "minute"

    def matches(self, path: str) -> bool:
        return self.path_prefix is None or self.prefix_matches(path)


class Faults:
    def __init__(self) -> None:
        self._rules: RuleQueue[_Rule] = RuleQueue()
        self.latency = 0.0

    def reset(self) -> None:
        self._rules.clear()
        self.latency = 0.0

    def fail_next(self, n: int, status: int, *, retry_after: int | None = None,
                  path_prefix: str | None = None, problem: str = "minute") -> None:
        if not 400 <= status <= 599:
            raise ValueError("fail_next needs an error status (400-599)")
        self._rules.add(_Rule(n, path_prefix, status, retry_after, problem))

    def drop_next(self, n: int, *, path_prefix: str | None = None) -> None:
        self._rules.add(_Rule(n, path_prefix))

    def take(self, path: str) -> _Rule | None:
        return self._rules.take(lambda rule: rule.matches(path))


def failure_response(rule: _Rule, path: str) -> web.Response:
    """An injected failure, with the body the real endpoint would send for that status."""
    cid = wire.correlation_id()
    headers = {"Xero-Correlation-Id": cid}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(rule.retry_after)
    status, lowered = rule.status, path.lower()
    if lowered.startswith("/connect/"):
        error = {400: "invalid_request", 401: "invalid_client"}.get(status, "server_error" if status >= 500 else "invalid_request")
        return wire.json_response({"error": error}, status=status, headers=headers)
    if status == 429:
        headers["X-Rate-Limit-Problem"] = rule.problem
        return web.Response(status=429, text="Rate limit exceeded", headers=headers)
    if status in (401, 403):
        detail = "AuthenticationUnsuccessful"
        return wire.json_response(wire.problem(status, detail, cid), status=status, headers=headers)
    if status == 404:
        return web.Response(status=404, text=wire.NOT_FOUND_TEXT, headers=headers)
    if status == 500:
        body = {"ErrorNumber": 500, "Type": "UnknownErrorException",
                "Message": "An error occurred in Xero. Check the API Status page http://status.developer.xero.com "
                           "for current service status."}
        return wire.json_response(body, status=500, headers=headers)
    return web.Response(status=status, text=HTTPStatus(status).phrase, headers=headers)
