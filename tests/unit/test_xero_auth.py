"""XeroOAuth's pure parts: PKCE, the authorize URL, the token set, the token endpoint's error mapping."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from bot.config import Settings
from bot.errors import AuthError, TransientProviderError
from bot.sync.xero_auth import XeroOAuth, XeroTokenSet, _token_error


def settings() -> Settings:
    return Settings(
        _env_file=None,
        xero_client_id="client-123",
        xero_client_secret="secret-456",
        xero_login_url="https://login.example.test/",
        token_encryption_keys=("k",),
    )


def test_pkce_pair_is_s256_of_a_valid_verifier() -> None:
    verifier, challenge = XeroOAuth.new_pkce()
    assert 43 <= len(verifier) <= 128
    assert re.fullmatch(r"[A-Za-z0-9\-._~]+", verifier)
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == expected
    assert "=" not in challenge
    assert XeroOAuth.new_pkce()[0] != verifier


async def test_authorize_url() -> None:
    async with httpx.AsyncClient() as http:
        oauth = XeroOAuth(settings(), http)
        url = oauth.authorize_url("state-1", "challenge-2", "https://bot.example.test/oauth/xero/callback")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://login.example.test/identity/connect/authorize"
    query = parse_qs(parts.query)
    assert query == {
        "response_type": ["code"],
        "client_id": ["client-123"],
        "redirect_uri": ["https://bot.example.test/oauth/xero/callback"],
        "scope": ["offline_access accounting.settings.read openid profile email"],
        "state": ["state-1"],
        "code_challenge": ["challenge-2"],
        "code_challenge_method": ["S256"],
    }
    assert "%20" in parts.query  # spaces as %20, not '+'
    assert "offline_access" in XeroOAuth.SCOPES
    assert "accounting.settings.read" in XeroOAuth.SCOPES


def test_token_set_hides_tokens_in_repr_but_keeps_them_for_storage() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    tokens = XeroTokenSet(
        access_token="AT-secret", refresh_token="RT-secret", expires_at=now + timedelta(minutes=30),
        scope="offline_access accounting.settings.read", refresh_issued_at=now,
    )
    assert "secret" not in repr(tokens)
    assert "secret" not in str(tokens)
    dumped = tokens.model_dump(mode="json")
    assert dumped["access_token"] == "AT-secret"
    assert XeroTokenSet.model_validate(dumped) == tokens
    assert tokens.scopes == {"offline_access", "accounting.settings.read"}
    assert not tokens.expires_within(timedelta(minutes=2), now)
    assert tokens.expires_within(timedelta(minutes=2), now + timedelta(minutes=28, seconds=1))
    assert tokens.refresh_idle(now + timedelta(days=3)) == timedelta(days=3)


def token_response(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("POST", "https://identity.example.test/connect/token"))


def test_token_errors() -> None:
    grant = _token_error(token_response(400, {"error": "invalid_grant"}))
    assert isinstance(grant, AuthError)
    assert grant.reconnect_required
    assert grant.code == "invalid_grant"

    client = _token_error(token_response(400, {"error": "invalid_client"}))
    assert isinstance(client, AuthError)
    assert not client.reconnect_required
    assert client.code == "invalid_client"

    unsupported = _token_error(token_response(400, {"error": "unsupported_grant_type"}))
    assert unsupported is not None
    assert not isinstance(unsupported, AuthError)
    assert unsupported.code == "unsupported_grant_type"

    assert isinstance(_token_error(token_response(503, None)), TransientProviderError)
    assert _token_error(token_response(200, {"access_token": "x"})) is None


async def test_client_authenticates_with_http_basic() -> None:
    async with httpx.AsyncClient() as http:
        form, auth = XeroOAuth(settings(), http)._client_auth({"grant_type": "refresh_token"})
    request = next(auth.auth_flow(httpx.Request("POST", "https://x.test/")))
    assert form == {"grant_type": "refresh_token"}
    expected = base64.b64encode(b"client-123:secret-456").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
