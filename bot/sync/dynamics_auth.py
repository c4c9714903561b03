"""Dynamics 365 sign-in with MSAL: the auth-code flow, and one encrypted token cache per connection.

The user signs in once for Global Discovery's scope; MSAL keeps the refresh token in that
connection's `SerializableTokenCache`, and every environment's token is then acquired silently
(refresh tokens are not tied to one resource). The cache lives in the store, encrypted with
`bot.crypto.TokenCipher` (TokenKind.DYNAMICS), and is written back whenever MSAL changed it (a
refresh rotates the refresh token).

MSAL is synchronous (requests), so every MSAL call runs in a worker thread. Calls for one connection
are serialised twice: an asyncio.Lock in this process, and a store lock across processes, because
two refreshes racing on one cache would each store a different rotated refresh token.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import msal
import requests
from msal.exceptions import MsalServiceError

from bot.config import Settings
from bot.crypto import TokenCipher
from bot.errors import AuthError, OAuthFlowError, Problem, TransientProviderError
from bot.storage.base import Store, TokenKind
from bot.sync.locks import DYNAMICS_TOKENS_LOCK, ConnectionLock

log = logging.getLogger(__name__)

PROVIDER = "dynamics"
SCOPE_SUFFIX = "/user_impersonation"
# Hosts MSAL knows itself; any other authority (the sandbox) must skip instance discovery, which
# would otherwise ask login.microsoftonline.com about it.
MICROSOFT_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
    }
)
# Token errors that only a new interactive sign-in can fix.
RECONNECT_ERRORS = frozenset({"invalid_grant", "interaction_required", "consent_required", "login_required"})
# MSAL's errors that a person can act on: passed on as the flow error's `reason` (bot.dialogs words them).
FLOW_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_grant",
        "consent_required",
        "interaction_required",
        "invalid_client",
        "unauthorized_client",
    }
)


class FlowProblem(StrEnum):
    """Why the Dynamics sign-in flow stopped, beyond MSAL's own error names (bot.dialogs words it)."""

    UNREACHABLE = "unreachable"  # Microsoft's sign-in did not answer
    MISMATCH = "mismatch"  # the callback does not belong to the flow that was started
    NO_ACCOUNT = "no_account"  # Microsoft did not say who signed in
    REFUSED = "refused"  # another error of MSAL's: `detail` holds Entra's description's first line


class DynamicsFlowError(OAuthFlowError):
    """A Dynamics sign-in that cannot complete: `reason` as for every flow error, plus what went wrong
    (`problem`: one of MSAL's FLOW_ERRORS or a FlowProblem) and Entra's own description, if any."""

    def __init__(self, reason: str, problem: str, detail: str = "") -> None:
        super().__init__(reason, problem)
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class DynamicsAccount:
    tenant_id: str
    object_id: str
    username: str
    name: str
    home_account_id: str


class _Session(requests.Session):
    """The session MSAL uses. It passes `timeout` and `verify` on every request because MSAL passes no
    timeout (a dead network must not hold a worker thread forever), and because requests lets the
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment variables override a session-level `verify`."""

    def __init__(self, timeout: float, verify: str | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._verify = verify

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs.setdefault("timeout", self._timeout)
        if self._verify is not None:
            kwargs.setdefault("verify", self._verify)
        return super().request(method, url, *args, **kwargs)


def _status_of(exc: MsalServiceError) -> int | None:
    # MSAL raises for a 5xx of Entra ("HTTP Error: 503", msal/throttled_http_client.py) without the body.
    found = re.search(r"\b([1-5]\d\d)\b", str(exc))
    return int(found.group(1)) if found else None


def _describe(result: dict[str, Any]) -> str:
    # Entra's descriptions carry an AADSTS code worth keeping, then trace ids and timestamps that are not.
    description = str(result.get("error_description") or "").strip().splitlines()
    return description[0][:300] if description else ""


class DynamicsAuth:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        cipher: TokenCipher,
        *,
        http_timeout: float = 20.0,
        lock_ttl: float = 60.0,
        lock_wait: float = 30.0,
    ) -> None:
        self._settings = settings
        self._store = store
        self._cipher = cipher
        self._authority = f"{settings.entra_authority_host}/organizations"
        host = (urlsplit(settings.entra_authority_host).hostname or "").lower()
        self._instance_discovery: bool | None = None if host in MICROSOFT_AUTHORITY_HOSTS else False
        self._session = _Session(http_timeout, str(settings.ca_bundle) if settings.ca_bundle else None)
        # MSAL caches its metadata requests (OpenID configuration) here, across the per-call apps.
        self._http_cache: dict[str, Any] = {}
        self._lock = ConnectionLock(
            store,
            DYNAMICS_TOKENS_LOCK,
            provider=PROVIDER,
            ttl=lock_ttl,
            wait=lock_wait,
        )

    def discovery_scope(self) -> str:
        return f"{self._settings.dataverse_discovery_url}{SCOPE_SUFFIX}"

    @staticmethod
    def resource_scope(resource_url: str) -> str:
        return f"{resource_url.rstrip('/')}{SCOPE_SUFFIX}"

    # -- MSAL plumbing (runs in worker threads) ------------------------------------------------------

    def _app(self, cache: msal.SerializableTokenCache | None) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            self._settings.dynamics_client_id,
            client_credential=self._settings.dynamics_client_secret.get_secret_value(),
            authority=self._authority,
            token_cache=cache,
            http_client=self._session,
            http_cache=self._http_cache,
            instance_discovery=self._instance_discovery,
        )

    def _serialised(self, connection_id: str) -> AbstractAsyncContextManager[None]:
        """The connection's sign-in, one MSAL call at a time here and across processes (bot.sync.locks)."""
        return self._lock.hold(connection_id)

    async def _load(self, connection_id: str) -> msal.SerializableTokenCache | None:
        blob = await self._store.get_tokens(connection_id, TokenKind.DYNAMICS)
        if blob is None:
            return None
        cache = msal.SerializableTokenCache()
        cache.deserialize(self._cipher.decrypt(blob).decode("utf-8"))
        return cache

    async def _save(self, connection_id: str, cache: msal.SerializableTokenCache) -> None:
        blob = self._cipher.encrypt(str(cache.serialize()).encode("utf-8"))
        await self._store.put_tokens(connection_id, TokenKind.DYNAMICS, blob)

    # -- the sign-in flow ----------------------------------------------------------------------------

    async def start_flow(self, redirect_uri: str, login_hint: str | None = None) -> dict[str, Any]:
        """MSAL's auth-code flow (PKCE S256, state, nonce): send the user to `flow["auth_uri"]`, keep
        the whole dict server-side under `flow["state"]` until the callback."""

        def initiate() -> dict[str, Any]:
            flow = self._app(None).initiate_auth_code_flow(
                [self.discovery_scope()], redirect_uri=redirect_uri, login_hint=login_hint
            )
            return dict(flow)

        try:
            return await asyncio.to_thread(initiate)
        except (requests.RequestException, MsalServiceError) as exc:  # unreachable, or a 5xx outage
            raise DynamicsFlowError("provider_unavailable", FlowProblem.UNREACHABLE) from exc

    async def complete_flow(
        self, connection_id: str, flow: dict[str, Any], query_params: dict[str, Any]
    ) -> DynamicsAccount:
        """Redeem the callback's code; the new token cache replaces any the connection had."""
        cache = msal.SerializableTokenCache()

        def redeem() -> tuple[dict[str, Any], list[dict[str, Any]]]:
            app = self._app(cache)
            result = app.acquire_token_by_auth_code_flow(flow, query_params)
            return dict(result), list(app.get_accounts())

        async with self._serialised(connection_id):
            try:
                result, accounts = await asyncio.to_thread(redeem)
            except (ValueError, KeyError):
                # MSAL raises ValueError when the callback does not belong to this flow (state mismatch),
                # KeyError when the stored flow is not one it made.
                raise DynamicsFlowError("invalid_state", FlowProblem.MISMATCH) from None
            except (requests.RequestException, MsalServiceError) as exc:  # unreachable, or a 5xx outage
                raise DynamicsFlowError("provider_unavailable", FlowProblem.UNREACHABLE) from exc
            if "error" in result:
                error = str(result["error"])
                log.info("dynamics sign-in failed: %s %s", error, _describe(result))
                if error in FLOW_ERRORS:
                    raise DynamicsFlowError(error, error)
                raise DynamicsFlowError("provider_error", FlowProblem.REFUSED, _describe(result))
            claims = result.get("id_token_claims") or {}
            account = accounts[0] if accounts else {}
            tenant_id = str(claims.get("tid") or "")
            object_id = str(claims.get("oid") or "")
            if not (tenant_id and object_id and account):
                raise DynamicsFlowError("provider_error", FlowProblem.NO_ACCOUNT)
            await self._save(connection_id, cache)
        signed_in = DynamicsAccount(
            tenant_id=tenant_id,
            object_id=object_id,
            username=str(claims.get("preferred_username") or account.get("username") or ""),
            name=str(claims.get("name") or ""),
            home_account_id=str(account.get("home_account_id") or ""),
        )
        log.info("dynamics sign-in completed for connection %s (tenant %s)", connection_id, tenant_id)
        return signed_in

    # -- tokens --------------------------------------------------------------------------------------

    async def access_token(
        self, connection_id: str, resource_url: str, *, force_refresh: bool = False
    ) -> str:
        """An access token for `resource_url` (an environment's Url, or the discovery URL), from the
        cache or by refreshing; `force_refresh` skips the cached one (the resource rejected it).
        Raises AuthError(reconnect_required=True) when only a new sign-in helps."""
        scope = self.resource_scope(resource_url)

        def acquire(cache: msal.SerializableTokenCache) -> dict[str, Any] | None:
            app = self._app(cache)
            accounts = app.get_accounts()
            if not accounts:
                return None
            result = app.acquire_token_silent_with_error([scope], accounts[0], force_refresh=force_refresh)
            return dict(result) if result is not None else None

        async with self._serialised(connection_id):
            cache = await self._load(connection_id)
            if cache is None:
                raise self._reconnect(Problem.NO_TOKENS)
            try:
                result = await asyncio.to_thread(acquire, cache)
            except requests.RequestException as exc:
                raise TransientProviderError(
                    Problem.SIGN_IN_UNAVAILABLE, provider=PROVIDER, where=f"token endpoint: {type(exc).__name__}"
                ) from exc
            except MsalServiceError as exc:
                # Entra answered 5xx (an outage, e.g. temporarily_unavailable): MSAL raises rather than
                # returning the error, and replays it for Retry-After seconds. Worth retrying; not a lapse.
                raise TransientProviderError(
                    Problem.SIGN_IN_UNAVAILABLE,
                    provider=PROVIDER,
                    status=_status_of(exc),
                    where=f"token endpoint: {type(exc).__name__}",
                ) from exc
            if cache.has_state_changed:
                await self._save(connection_id, cache)
        if result is None:
            raise self._reconnect(Problem.NO_TOKENS, where="no usable refresh token")
        token = result.get("access_token")
        if isinstance(token, str) and token:
            return token
        error = str(result.get("error") or "")
        log.info(
            "dynamics silent token for connection %s failed: %s %s", connection_id, error, _describe(result)
        )
        if error in RECONNECT_ERRORS:
            raise self._reconnect(error, detail=_describe(result))  # expired or revoked
        if error in {"temporarily_unavailable", "server_error"}:
            raise TransientProviderError(
                Problem.SIGN_IN_UNAVAILABLE, provider=PROVIDER, detail=_describe(result), where=error
            )
        raise AuthError(error, provider=PROVIDER, detail=_describe(result))

    async def forget(self, connection_id: str) -> None:
        """Drop the connection's token cache (disconnect). Its refresh token is never used again."""
        async with self._serialised(connection_id):
            await self._store.delete_tokens(connection_id, TokenKind.DYNAMICS)

    def close(self) -> None:
        """Close MSAL's HTTP session (at shutdown)."""
        self._session.close()

    @staticmethod
    def _reconnect(code: str, *, detail: str = "", where: str = "") -> AuthError:
        return AuthError(code, reconnect_required=True, provider=PROVIDER, detail=detail, where=where)
