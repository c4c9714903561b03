"""The Dataverse sandbox: Global Discovery plus one Web API per seeded environment, in one aiohttp app.

    GET  {base}/api/discovery/v2.0/Instances[(<key>)]          token audience: {base}
    ANY  {base}/api-env/{uniquename}/api/data/v9.2/...         token audience: {base}/env/{uniquename}

Global Discovery's `Url` ({base}/env/{uniquename}) is the token audience and `ApiUrl`
({base}/api-env/{uniquename}) is where Web API calls go, two different addresses as in the real service
(`https://org.crm.dynamics.com` vs `https://org.api.crm.dynamics.com`,
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/discover-url-organization-web-api); a
token for `Url` is accepted on `ApiUrl`. The Web API is only served under `ApiUrl`, so a client that calls
`Url` finds out.

Environments start without custom tables; those seeded as "installed" import the solution zip given to
the sandbox (`solution_zip`) when they are built, through the same code as `ImportSolution`.

Every request passes, in order: fault switches (`fail_next`, `drop_next`), the bearer token (checked with
the Entra sandbox in the same process; 401 with Dataverse's WWW-Authenticate otherwise), membership in the
environment (403 0x80072560), service protection limits (429 + Retry-After), latency, then the operation.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sandbox.clock import Clock
from sandbox.dataverse import control, discovery, importer, webapi
from sandbox.dataverse.errors import DataverseError, not_member
from sandbox.dataverse.limits import ServiceProtection
from sandbox.dataverse.operations import Caller
from sandbox.dataverse.seed import CONNECTOR_ROLE, ENVIRONMENTS
from sandbox.dataverse.solution import read_package
from sandbox.dataverse.store import EnvironmentState, Member
from sandbox.dataverse.wire import ApiRequest, ApiResponse, represent
from sandbox.entra import EntraSandbox
from sandbox.entra.tokens import Claims

logger = logging.getLogger(__name__)

API_ROOT = "/api/data/v9.2/"
DISCOVERY_ROOT = "/api/discovery/v2.0/"
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


@dataclass(frozen=True)
class DataverseRequest:
    method: str
    path: str
    status: int
    env: str  # unique name, or "discovery"
    upn: str
    writes: int


@dataclass(frozen=True)
class _Fault:
    status: int = 0
    retry_after: float | None = None
    drop: bool = False
    after_processing: bool = False
    path_prefix: str | None = None

    def applies_to(self, request: web.Request) -> bool:
        if self.path_prefix is None:
            return True
        relative = request.path.split(API_ROOT, 1)[1] if API_ROOT in request.path else ""
        return request.path.startswith(self.path_prefix) or relative.startswith(self.path_prefix)


_DROP_AFTER = "sandbox.drop_after"


class DataverseSandbox:
    def __init__(self, entra: EntraSandbox, clock: Clock, *, solution_zip: bytes | None = None) -> None:
        self.entra = entra
        self.clock = clock
        self.solution_zip = solution_zip
        self.import_seconds = 0.0
        self.key_seconds = 0.0
        self.base_url = "http://127.0.0.1"
        self.environments: dict[str, EnvironmentState] = {}
        self.limits = ServiceProtection(clock)
        self.requests: list[DataverseRequest] = []
        self.latency = 0.0
        self._faults: deque[_Fault] = deque()
        self._build_environments()
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        control.add_routes(self.app, self)
        self.app.router.add_get(DISCOVERY_ROOT + "{tail:Instances.*}", self._discovery)
        self.app.router.add_route("*", "/api-env/{env}" + API_ROOT + "{tail:.*}", self._web_api)

    # Set-up ----------------------------------------------------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        self.base_url = url.rstrip("/")
        self.entra.register_resource(self.base_url)
        for env in self.environments.values():
            self._set_urls(env)
            self.entra.register_resource(env.url)

    def _set_urls(self, env: EnvironmentState) -> None:
        env.url = f"{self.base_url}/env/{env.seed.unique_name}"
        env.api_url = f"{self.base_url}/api-env/{env.seed.unique_name}"

    def _build_environments(self) -> None:
        self.environments = {seed.unique_name: EnvironmentState(seed, self.clock) for seed in ENVIRONMENTS}
        for env in self.environments.values():
            self._set_urls(env)
            if env.seed.solution_installed and self.solution_zip is not None:
                importer.apply(env, self.solution_zip, key_delay=0.0)
                env.grant_seeded_roles()
            elif env.seed.solution_installed:
                logger.warning("no solution zip given: %s starts without our tables", env.seed.unique_name)

    # Control ---------------------------------------------------------------------------------------------------

    def env(self, unique_name: str) -> EnvironmentState:
        try:
            return self.environments[unique_name]
        except KeyError:
            raise KeyError(f"no sandbox environment {unique_name!r}; have {sorted(self.environments)}") from None

    def rows(self, env: str, entity_set: str) -> list[dict[str, Any]]:
        """The rows of a table as the Web API returns them (oldest first); [] if the table is not installed."""
        state = self.env(env)
        importer.tick(state)
        store = state.tables.get(entity_set)
        if store is None:
            return []
        return [represent(store.spec, row) for row in store.rows.values()]  # insertion order: oldest first

    @property
    def write_count(self) -> int:
        return sum(r.writes for r in self.requests)

    def fail_next(self, n: int, status: int, retry_after: float | None = None, *, path_prefix: str | None = None) -> None:
        """The next n requests (whose path, full or after /api/data/v9.2/, starts with path_prefix) answer
        `status` with Dataverse's error body for it, and Retry-After when given."""
        self._faults.extend(
            _Fault(status=status, retry_after=retry_after, path_prefix=path_prefix) for _ in range(n)
        )

    def drop_next(self, n: int, *, after_processing: bool = False, path_prefix: str | None = None) -> None:
        """The next n requests lose their connection without a response: before anything is done, or
        (after_processing=True) once the operation has been applied, as when a response is lost in transit."""
        self._faults.extend(
            _Fault(drop=True, after_processing=after_processing, path_prefix=path_prefix) for _ in range(n)
        )

    def set_latency(self, seconds: float) -> None:
        self.latency = max(0.0, seconds)

    def set_limits(self, **settings: Any) -> None:
        """max_requests, window_seconds, max_execution_ms, max_concurrent, dop_hint."""
        self.limits.configure(**settings)

    def install_solution(self, env: str, solution_zip: bytes | None = None) -> None:
        """Import a solution zip (default: the one the sandbox was given) as a System Administrator would;
        nothing happens if that very version is already installed."""
        data = solution_zip if solution_zip is not None else self.solution_zip
        if data is None:
            raise ValueError("the Dataverse sandbox was given no solution zip (DataverseSandbox(solution_zip=...))")
        state = self.env(env)
        package = read_package(data)
        installed = state.solutions.get(package.unique_name)
        if installed is not None and installed.version == package.version:
            return
        importer.apply(state, data)

    def uninstall_solution(self, env: str, unique_name: str | None = None) -> None:
        """Delete a solution (default: every imported one): its tables, data and roles go with it."""
        state = self.env(env)
        for name in [unique_name] if unique_name else list(state.solutions):
            importer.uninstall(state, name)

    def set_import_timing(self, *, import_seconds: float = 0.0, key_seconds: float = 0.0) -> None:
        """How long an ImportSolutionAsync runs and how long a new alternate key's index takes to become
        Active after its import, both on the sandbox clock (0: at the next request)."""
        self.import_seconds, self.key_seconds = max(0.0, import_seconds), max(0.0, key_seconds)
        for state in self.environments.values():
            state.import_seconds, state.key_delay = self.import_seconds, self.key_seconds

    def grant_role(self, env: str, upn: str, role: str = CONNECTOR_ROLE) -> None:
        self.env(env).grant_role(upn, role)

    def revoke_role(self, env: str, upn: str, role: str = CONNECTOR_ROLE) -> None:
        self.env(env).revoke_role(upn, role)

    def set_state(self, env: str, state: int) -> None:
        """0 enabled, 1 disabled (Global Discovery's State; a disabled environment answers 503)."""
        self.env(env).state = state

    def reset(self) -> None:
        """Back to the seeded world: rows, roles and solutions as seeded, no faults, default limits, no log."""
        self._build_environments()
        self.set_import_timing()
        self.limits.reset()
        self.requests.clear()
        self._faults.clear()
        self.latency = 0.0

    # HTTP ------------------------------------------------------------------------------------------------------

    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        fault = self._next_fault(request)
        if fault is not None:
            return fault
        claims, problem = self._authenticate(request, self.base_url)
        if claims is None:
            return self._finish(request, "discovery", "", problem or _challenge(self.entra.base_url, "common", self.base_url))
        if self.latency:
            await asyncio.sleep(self.latency)
        tail = request.raw_path.split("?", 1)[0].split(DISCOVERY_ROOT, 1)[1]
        key = tail[len("Instances("):-1] if tail.startswith("Instances(") and tail.endswith(")") else None
        if key is None and tail != "Instances":
            error = DataverseError(404, "", f"Resource not found for the segment '{tail}'.")
            return self._finish(request, "discovery", claims.upn, ApiResponse.json(404, error.body()))
        try:
            response = discovery.instances(
                self.base_url, self.environments.values(), claims.tenant_id, claims.object_id, key,
                request.raw_path.partition("?")[2],
            )
        except DataverseError as error:
            response = ApiResponse.json(error.status, error.body())
        return self._finish(request, "discovery", claims.upn, response)

    async def _web_api(self, request: web.Request) -> web.StreamResponse:
        env = self.environments.get(request.match_info["env"])
        if env is None:
            raise web.HTTPNotFound(text="no such sandbox environment")
        name = env.seed.unique_name
        fault = self._next_fault(request, env)
        if fault is not None:
            return fault
        claims, problem = self._authenticate(request, env.url)
        if claims is None:
            return self._finish(request, name, "", problem or _challenge(self.entra.base_url, env.seed.tenant_id, env.url))
        member = env.members.get(claims.object_id) if claims.tenant_id == env.seed.tenant_id else None
        if member is None:
            error = not_member()
            return self._finish(request, name, claims.upn, ApiResponse.json(error.status, error.body()))
        if env.state != 0:
            body = {"error": {"code": "", "message": f"The organization '{env.seed.friendly_name}' is disabled."}}
            return self._finish(request, name, claims.upn, ApiResponse.json(503, body))
        importer.tick(env)
        user_key = f"{name}:{member.systemuser_id}"
        throttled = self.limits.admit(user_key)
        if throttled is not None:
            response = ApiResponse.json(throttled.status, throttled.body(), throttled.headers)
            return self._finish(request, name, claims.upn, response, user_key)
        started = time.monotonic()
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            response = self._serve(request, env, member, await request.read())
        finally:
            self.limits.finish(user_key, (time.monotonic() - started) * 1000)
        return self._finish(request, name, claims.upn, response, user_key)

    def _serve(self, request: web.Request, env: EnvironmentState, member: Member, body: bytes) -> ApiResponse:
        raw_path, _, query = request.raw_path.partition("?")
        relative = raw_path.split(API_ROOT, 1)[1]
        headers = {name.lower(): value for name, value in request.headers.items()}
        caller = Caller(env, member, f"{env.api_url}/api/data/v9.2")
        try:
            return webapi.dispatch(caller, ApiRequest(request.method, relative, query, headers, body))
        except Exception:
            logger.exception("sandbox Dataverse failed on %s %s", request.method, raw_path)
            error = DataverseError(500, "0x80040216", "An unexpected error occurred.")
            return ApiResponse.json(500, error.body())

    def _authenticate(self, request: web.Request, audience: str) -> tuple[Claims | None, ApiResponse | None]:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, None
        check = self.entra.check_access_token(token.strip(), audience)
        if check.claims is not None:
            return check.claims, None
        challenge = _challenge(self.entra.base_url, _tenant_hint(self, audience), audience)
        challenge.body = ApiResponse.json(401, {"error": {"code": "", "message": check.problem}}).body
        challenge.headers["Content-Type"] = "application/json; odata.metadata=minimal"
        return None, challenge

    def _next_fault(self, request: web.Request, env: EnvironmentState | None = None) -> web.StreamResponse | None:
        fault = next((f for f in self._faults if f.applies_to(request)), None)
        if fault is None:
            return None
        self._faults.remove(fault)
        name = env.seed.unique_name if env else "discovery"
        if fault.drop and fault.after_processing:
            request[_DROP_AFTER] = True
            return None
        if fault.drop:
            self.requests.append(DataverseRequest(request.method, request.path, 0, name, "", 0))
            return _dropped(request)
        headers: dict[str, str] = {}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.status == 429:
            s = self.limits.settings
            code, message = "0x80072322", (
                f"Number of requests exceeded the limit of {s.max_requests} over time window of {s.window_seconds:g} seconds."
            )
        elif fault.status == 500:
            code, message = "0x80040216", "An unexpected error occurred."
        else:
            code, message = "", _REASONS.get(fault.status, "Error")
        if fault.status == 401:
            audience = env.url if env else self.base_url
            response = _challenge(self.entra.base_url, _tenant_hint(self, audience), audience)
            response.headers.update(headers)
        else:
            response = ApiResponse.json(fault.status, {"error": {"code": code, "message": message}}, headers)
        return self._finish(request, name, "", response)

    def _finish(
        self, request: web.Request, env: str, upn: str, response: ApiResponse, user_key: str | None = None
    ) -> web.Response:
        headers = dict(response.headers)
        request_id = str(uuid.uuid4())
        headers.setdefault("OData-Version", "4.0")
        headers["REQ_ID"] = request_id
        headers["x-ms-service-request-id"] = request_id
        if env != "discovery":
            headers["x-ms-dop-hint"] = str(self.limits.settings.dop_hint)
        if user_key is not None:
            requests_left, time_left = self.limits.remaining(user_key)
            headers["x-ms-ratelimit-burst-remaining-xrm-requests"] = str(requests_left)
            headers["x-ms-ratelimit-time-remaining-xrm-requests"] = f"{time_left:,.2f}"
        self.requests.append(DataverseRequest(request.method, request.path, response.status, env, upn, response.writes))
        if request.get(_DROP_AFTER):
            return _dropped(request)
        content_type = headers.pop("Content-Type", None)
        result = web.Response(status=response.status, body=response.body or None, headers=headers)
        if content_type:
            result.headers["Content-Type"] = content_type
        return result


def _dropped(request: web.Request) -> web.Response:
    if request.transport is not None:
        request.transport.abort()
    # Nothing reaches the client: aiohttp quietly discards a response for a closed connection.
    return web.Response(status=500)


def _tenant_hint(sandbox: DataverseSandbox, audience: str) -> str:
    for env in sandbox.environments.values():
        if audience in (env.url, env.api_url):
            return env.seed.tenant_id
    return "common"


def _challenge(authority: str, tenant: str, audience: str) -> ApiResponse:
    return ApiResponse.empty(
        401, {"WWW-Authenticate": f"Bearer authorization_uri={authority}/{tenant}/oauth2/authorize, resource_id={audience}/"}
    )

