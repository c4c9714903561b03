"""Xero's OAuth 2.0: authorize URL (with PKCE), code exchange, refresh, revocation, /connections.

The app is a confidential "Web app": the client authenticates to the token endpoint with HTTP Basic
(`client_id:client_secret`), as Xero documents. PKCE (S256) is used on top, so an intercepted code
is useless without the verifier kept in the OAuth state.

Token endpoint errors are mapped here: `invalid_grant` (code used or expired, refresh token expired,
revoked or superseded) -> `AuthError(reconnect_required=True)`; `invalid_client` -> `AuthError` (our
configuration, not the user's doing). Errors from the API host (/connections) go through
`bot.sync.xero_errors.xero_error`, the one mapping for Xero's API.

Nothing here logs a token, a code or a verifier.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.config import Settings
from bot.errors import AuthError, Problem, ProviderError
from bot.sync.clock import Now, utcnow
from bot.sync.http import RetryPolicy, error_for_status, send_with_retry
from bot.sync.xero_errors import PROVIDER, xero_error
from bot.sync.xero_models import XeroConnection

logger = logging.getLogger(__name__)

# Access tokens last 30 minutes; used when a token response leaves expires_in out.
DEFAULT_EXPIRES_IN = 1800


class XeroTokenSet(BaseModel):
    """One user's Xero tokens. `repr` hides the secrets; `model_dump()` keeps them (for encryption)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    access_token: str = Field(repr=False)
    refresh_token: str = Field(repr=False)
    expires_at: datetime  # UTC
    scope: str = ""
    token_type: str = "Bearer"
    # When Xero issued the current refresh token: an unused one dies after 60 days.
    refresh_issued_at: datetime
    # From the access token: shared by the connections one consent created (GET /connections?authEventId=).
    auth_event_id: str = ""
    # From the id_token (openid profile email), when Xero sent one.
    xero_user_id: str = ""
    email: str = ""
    name: str = ""

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def expires_within(self, margin: timedelta, now: datetime) -> bool:
        return self.expires_at - margin <= now

    def refresh_idle(self, now: datetime) -> timedelta:
        """How long the refresh token has gone unused (60 days kills it)."""
        return now - self.refresh_issued_at


def _unverified_claims(token: str | None) -> dict[str, Any]:
    """Claims of a JWT we just received from Xero's token endpoint over TLS.

    OpenID Connect (Core 3.1.3.7) lets a client rely on the TLS server check instead of the signature
    for an id_token it received directly from the token endpoint, which is the only case here. The
    claims only label the connection (user id, email, auth event); they authorise nothing.
    """
    if not token or token.count(".") != 2:
        return {}
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _token_error(response: httpx.Response) -> ProviderError | None:
    """Map the token and revocation endpoints' answers (RFC 6749 5.2 error bodies)."""
    if response.status_code < 400:
        return None
    error, description = "", ""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        error = str(body.get("error") or "")
        description = str(body.get("error_description") or "")[:200]
    if error == "invalid_grant":  # the user has to connect Xero again
        return AuthError(
            error, reconnect_required=True, provider=PROVIDER, status=response.status_code, detail=description
        )
    if error in {"invalid_client", "unauthorized_client"}:  # XERO_CLIENT_ID / XERO_CLIENT_SECRET refused
        return AuthError(error, provider=PROVIDER, status=response.status_code, detail=description)
    return error_for_status(response, provider=PROVIDER, detail=description, code=error)


class XeroOAuth:
    # Accounts, TaxRates, BrandingThemes and Organisation need accounting.settings.read (not replaced by
    # the granular scopes of 2026); offline_access brings the refresh token; openid profile email the
    # id_token that names the Xero user.
    SCOPES: tuple[str, ...] = ("offline_access", "accounting.settings.read", "openid", "profile", "email")

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        retry: RetryPolicy | None = None,
        now: Now = utcnow,
    ) -> None:
        self._settings = settings
        self._http = http
        self._retry = retry or RetryPolicy()
        self._now = now

    # --- authorization ---------------------------------------------------------------------------

    @staticmethod
    def new_pkce() -> tuple[str, str]:
        """A fresh (code_verifier, code_challenge) pair, S256."""
        verifier = secrets.token_urlsafe(64)  # 86 chars of [A-Za-z0-9_-], within 43..128
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return verifier, challenge

    def authorize_url(
        self, state: str, code_challenge: str, redirect_uri: str, scopes: Sequence[str] | None = None
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self._settings.xero_client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(scopes or self.SCOPES),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        }
        query = urlencode(params, quote_via=quote)
        return f"{self._settings.xero_login_url}/identity/connect/authorize?{query}"

    # --- token endpoint --------------------------------------------------------------------------

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> XeroTokenSet:
        """Trade the callback's code for tokens. A code works once: not retried after it may have arrived."""
        body = await self._token_call(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            idempotent=False,
        )
        tokens = self._token_set(body, previous=None)
        logger.info("Xero authorization code exchanged (auth event %s)", tokens.auth_event_id or "?")
        return tokens

    async def refresh(self, refresh_token: str) -> XeroTokenSet:
        """A new token set; the returned refresh token replaces the old one (save it before using it).

        Retried on transient failures: if a response is lost, Xero accepts the old refresh token again
        for 30 minutes."""
        body = await self._token_call(
            {"grant_type": "refresh_token", "refresh_token": refresh_token}, idempotent=True
        )
        return self._token_set(body, previous=refresh_token)

    async def revoke(self, refresh_token: str) -> None:
        """Revoke the refresh token (and with it the user's connections to this app)."""
        url = f"{self._settings.xero_identity_url}/connect/revocation"
        form, auth = self._client_auth({"token": refresh_token})
        await send_with_retry(
            lambda: self._http.post(url, data=form, auth=auth, headers={"Accept": "application/json"}),
            provider=PROVIDER,
            policy=self._retry,
            classify=_token_error,
        )
        logger.info("Xero refresh token revoked")

    async def _token_call(self, form: dict[str, str], *, idempotent: bool) -> dict[str, Any]:
        url = f"{self._settings.xero_identity_url}/connect/token"
        data, auth = self._client_auth(form)
        response = await send_with_retry(
            lambda: self._http.post(url, data=data, auth=auth, headers={"Accept": "application/json"}),
            provider=PROVIDER,
            policy=self._retry,
            classify=_token_error,
            idempotent=idempotent,
        )
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not body.get("access_token"):
            raise ProviderError(
                Problem.BAD_TOKEN_RESPONSE,
                provider=PROVIDER,
                status=response.status_code,
                where="no access_token",
            )
        return body

    def _client_auth(self, form: dict[str, str]) -> tuple[dict[str, str], httpx.Auth]:
        # Settings require a secret with the client id: the app is always a confidential client.
        secret = self._settings.xero_client_secret.get_secret_value()
        return form, httpx.BasicAuth(self._settings.xero_client_id, secret)

    def _token_set(self, body: dict[str, Any], *, previous: str | None) -> XeroTokenSet:
        now = self._now()
        refresh_token = str(body.get("refresh_token") or "")
        if not refresh_token:
            if previous is None:
                raise AuthError(Problem.MISSING_REFRESH_TOKEN, reconnect_required=True, provider=PROVIDER)
            refresh_token = previous
        try:
            expires_in = int(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = DEFAULT_EXPIRES_IN
        access = str(body["access_token"])
        access_claims = _unverified_claims(access)
        id_claims = _unverified_claims(body.get("id_token"))
        name = " ".join(
            part for part in (id_claims.get("given_name"), id_claims.get("family_name")) if part
        ) or str(id_claims.get("name") or "")
        try:
            return XeroTokenSet(
                access_token=access,
                refresh_token=refresh_token,
                expires_at=now + timedelta(seconds=expires_in),
                scope=str(body.get("scope") or ""),
                token_type=str(body.get("token_type") or "Bearer"),
                refresh_issued_at=now,
                auth_event_id=str(access_claims.get("authentication_event_id") or ""),
                xero_user_id=str(id_claims.get("xero_userid") or id_claims.get("sub") or ""),
                email=str(id_claims.get("email") or ""),
                name=name,
            )
        except ValidationError:
            raise ProviderError(Problem.BAD_TOKEN_RESPONSE, provider=PROVIDER) from None

    # --- connections (API host) ------------------------------------------------------------------

    async def connections(self, access_token: str, auth_event_id: str | None = None) -> list[XeroConnection]:
        """The tenants this user's token covers; with `auth_event_id`, only those of one consent."""
        url = f"{self._settings.xero_api_url}/connections"
        params = {"authEventId": auth_event_id} if auth_event_id else None
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        response = await send_with_retry(
            lambda: self._http.get(url, params=params, headers=headers),
            provider=PROVIDER,
            policy=self._retry,
            classify=xero_error,
        )
        try:
            body = response.json()
            items = body if isinstance(body, list) else []
            return [XeroConnection.model_validate(item) for item in items]
        except (json.JSONDecodeError, UnicodeDecodeError, ValidationError):
            raise ProviderError(Problem.BAD_RESPONSE, provider=PROVIDER, where="/connections") from None

    async def delete_connection(self, access_token: str, connection_id: str) -> None:
        """Disconnect one tenant. `connection_id` is the connection's `id`, not its tenantId.

        Raises NotFound if Xero does not know it (already disconnected)."""
        url = f"{self._settings.xero_api_url}/connections/{quote(connection_id, safe='')}"
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        await send_with_retry(
            lambda: self._http.delete(url, headers=headers),
            provider=PROVIDER,
            policy=self._retry,
            classify=xero_error,
        )
        logger.info("Xero connection %s deleted", connection_id)
