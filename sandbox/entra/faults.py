"""Fault switches for the Entra sandbox: an outage of the token endpoint, as opposed to a refusal.

`fail_next(n, status)` answers the next n matching requests with a 5xx, the way Entra's token endpoint
answers when it cannot serve a request, instead of running the grant. Refusals of a sign-in have their own
switches on the sandbox (`revoke_user`, `require_interaction`): they are answers, not failures.

Which requests: with no `path_prefix`, POSTs to the token endpoint of any tenant
(`/{tenant}/oauth2/v2.0/token`); with one, any path starting with it (case-insensitive), e.g.
`/organizations/v2.0/.well-known` to fail discovery. Rules queue up in the order they were set; a request
takes the first rule that matches and uses up one of its n. The control API is never affected, nor the
request log (failed requests are logged with their status).

What the answer looks like, and where that comes from:
- HTTP 503 (or the status given) with Entra's usual JSON error body (`error`, `error_description`
  "AADSTSnnnn: ... Trace ID: ... Correlation ID: ... Timestamp: ...", `error_codes`, `timestamp`,
  `trace_id`, `correlation_id`, `error_uri`). The error is `temporarily_unavailable`, "The server is
  temporarily too busy to handle the request. Retry the request."
  (https://learn.microsoft.com/entra/identity-platform/reference-error-codes, "Handling error codes in
  your application"). The AADSTS code and text are those of a real 503 from the token endpoint,
  `AADSTS90033: A transient error has occurred. Please try again.` with `error_codes: [90033]`
  (quoted in https://github.com/Azure/azure-sdk-for-python/issues/14241). Docs are silent on what other
  5xx statuses carry; modelled as the service most plausibly behaves: the same body whatever the 5xx.
- `Retry-After` (whole seconds) only when `retry_after` is given: Entra's service team says it replies
  503 with Retry-After when "too busy" (https://github.com/AzureAD/microsoft-authentication-library-for-dotnet/issues/3907),
  but docs are silent on whether every outage answer has one; modelled as optional.
- Only 5xx: a 429 (throttling) is not modelled, since docs are silent on its body for a user's refresh
  grant (https://learn.microsoft.com/entra/msal/dotnet/advanced/client-and-server-throttling describes
  429 + `Retry-After: 60` for client credentials only).

What MSAL Python (1.39) does with such an answer, for the tests' sake: it does not return an error dict;
`oauth2cli/oauth2.py` `_obtain_token` calls `raise_for_status()` for any status >= 500, so
`acquire_token_silent(_with_error)` raises `msal.exceptions.MsalServiceError("HTTP Error: 503")` (the body
is not read), and its throttling cache (`msal/throttled_http_client.py`) replays that same failure, without
a request, for `Retry-After` seconds (5 s without the header, for a confidential client; none for 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from sandbox.entra.errors import AadError
from sandbox.fault_rules import Rule, RuleQueue

TOKEN_PATH_SUFFIX = "/oauth2/v2.0/token"
_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


@dataclass
class _Rule(Rule):
    status: int = 503
    retry_after: int | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.path_prefix is None:
            return method == "POST" and path.lower().endswith(TOKEN_PATH_SUFFIX)
        return self.prefix_matches(path)


class Faults:
    def __init__(self) -> None:
        self._rules: RuleQueue[_Rule] = RuleQueue()

    def reset(self) -> None:
        self._rules.clear()

    @property
    def pending(self) -> int:
        """How many failures are still queued (over all rules)."""
        return self._rules.pending

    def fail_next(
        self, n: int, status: int = 503, *, retry_after: int | None = None, path_prefix: str | None = None
    ) -> None:
        if not 500 <= status <= 599:
            raise ValueError("fail_next needs a 5xx status (refusals: revoke_user, require_interaction)")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after is a number of seconds (>= 0)")
        self._rules.add(_Rule(n, path_prefix, status, retry_after))

    def take(self, method: str, path: str) -> _Rule | None:
        return self._rules.take(lambda rule: rule.matches(method, path))


TRANSIENT = AadError("temporarily_unavailable", 90033, "A transient error has occurred. Please try again.", status=503)


def failure_response(rule: _Rule, now: datetime, correlation_id: str | None) -> web.Response:
    """The outage answer: the rule's 5xx with Entra's error body (see the module docstring)."""
    headers = dict(_NO_STORE)
    if rule.retry_after is not None:
        headers["Retry-After"] = str(rule.retry_after)
    return web.json_response(TRANSIENT.body(now, correlation_id), status=rule.status, headers=headers)
