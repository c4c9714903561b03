"""Global Discovery: the Dynamics 365 environments a signed-in user can use.

One call, `GET {discovery}/api/discovery/v2.0/Instances`, with a token for the discovery service's
own audience (`DynamicsAuth.discovery_scope()`). Only enabled environments (State 0) are returned.
Persist `id`/`unique_name`: the URLs can change.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from bot.config import Settings
from bot.errors import Problem, ProviderError
from bot.sync.dataverse import ODATA_HEADERS, PROVIDER, classify
from bot.sync.http import RetryPolicy, send_with_retry

log = logging.getLogger(__name__)

INSTANCES_PATH = "/api/discovery/v2.0/Instances"
_FIELDS = (
    "Id",
    "UniqueName",
    "UrlName",
    "FriendlyName",
    "Url",
    "ApiUrl",
    "State",
    "Version",
    "Region",
    "TenantId",
    "EnvironmentId",
)
STATE_ENABLED = 0


@dataclass(frozen=True)
class Environment:
    id: str  # the organization id
    unique_name: str
    url_name: str
    friendly_name: str
    url: str  # the token audience: scopes are f"{url}/user_impersonation"
    api_url: str  # the Web API host
    state: int
    version: str
    region: str
    tenant_id: str
    environment_id: str

    @classmethod
    def from_instance(cls, item: dict[str, Any]) -> Environment:
        def text(name: str) -> str:
            value = item.get(name)
            return "" if value is None else str(value)

        state = item.get("State")
        return cls(
            id=text("Id"),
            unique_name=text("UniqueName"),
            url_name=text("UrlName"),
            friendly_name=text("FriendlyName") or text("UniqueName"),
            url=text("Url").rstrip("/"),
            api_url=(text("ApiUrl") or text("Url")).rstrip("/"),
            state=state if isinstance(state, int) else -1,
            version=text("Version"),
            region=text("Region"),
            tenant_id=text("TenantId"),
            environment_id=text("EnvironmentId"),
        )


class DiscoveryClient:
    def __init__(
        self, settings: Settings, http: httpx.AsyncClient, *, retry: RetryPolicy | None = None
    ) -> None:
        self._url = f"{settings.dataverse_discovery_url}{INSTANCES_PATH}"
        self._http = http
        self._retry = retry or RetryPolicy()

    async def environments(self, access_token: str) -> list[Environment]:
        """Enabled environments the token's user is provisioned in, by friendly name; [] if none."""
        params = {"$select": ",".join(_FIELDS), "$filter": f"State eq {STATE_ENABLED}"}
        headers = {**ODATA_HEADERS, "Authorization": f"Bearer {access_token}"}

        async def send() -> httpx.Response:
            return await self._http.get(self._url, params=params, headers=headers)

        response = await send_with_retry(send, provider=PROVIDER, policy=self._retry, classify=classify)
        try:
            items = response.json()["value"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                Problem.BAD_RESPONSE, provider=PROVIDER, status=200, where="Global Discovery"
            ) from exc
        environments = [Environment.from_instance(item) for item in items if isinstance(item, dict)]
        # The filter is the service's job, but a disabled environment must never be offered.
        enabled = [env for env in environments if env.state == STATE_ENABLED and env.api_url]
        log.info("discovery found %d enabled environment(s)", len(enabled))
        return sorted(enabled, key=lambda env: env.friendly_name.casefold())
