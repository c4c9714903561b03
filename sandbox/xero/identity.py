"""Xero's identity service as state: apps, sign-in sessions, consents, codes, token families, connections.

Rules (xero.md section 1): exact redirect URIs; codes single-use, 5 minutes, bound to client, redirect
URI and PKCE challenge; access tokens 30 minutes; refresh tokens rotate on every use, the replaced one
still works for 30 minutes, any unused one dies after 60 days; scopes accumulate per user and app until
revocation; connections are per user, app and tenant and share an authEventId per consent.

Revocation removes the user's connections for the app and kills the token family's refresh tokens. Its
access tokens stay valid until they expire (they are self-contained JWTs at Xero) but reach no tenant.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from sandbox.clock import Clock
from sandbox.xero import tokens
from sandbox.xero.identity_records import (
    KNOWN_SCOPES,
    REMOVED_SCOPES,
    AccessRecord,
    App,
    AuthorizeError,
    BearerError,
    Code,
    Connection,
    Family,
    RefreshRecord,
    SignIn,
    TokenError,
)
from sandbox.xero.seed import DemoUser
from sandbox.xero.wire import token_expired_detail

ACCESS_LIFETIME = 30 * 60
REFRESH_GRACE = 30 * 60
REFRESH_IDLE = 60 * 24 * 3600
CODE_LIFETIME = 5 * 60
SIGN_IN_LIFETIME = 60 * 60

_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    local = parts.hostname in ("localhost", "127.0.0.1", "[::1]", "::1")
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local) or not parts.netloc:
        raise ValueError("redirect URIs must be https (http only for localhost)")
    if "*" in uri or parts.fragment:
        raise ValueError("redirect URIs cannot hold wildcards or fragments")


class Identity:
    def __init__(self, clock: Clock, apps: list[App], users: Mapping[str, DemoUser],
                 user_tenants: Mapping[str, list[str]]) -> None:
        self.clock = clock
        self.apps = {app.client_id: app for app in apps}
        self.users = users
        self.user_tenants = user_tenants
        self.reset()

    def reset(self) -> None:
        """Forget sessions, consents and tokens; app registrations stay."""
        self.sign_ins: dict[str, SignIn] = {}
        self.sessions: dict[str, str] = {}
        self.codes: dict[str, Code] = {}
        self.connections: dict[str, Connection] = {}
        self.grants: dict[tuple[str, str], set[str]] = {}
        self.families: dict[str, Family] = {}
        self.refresh_tokens: dict[str, RefreshRecord] = {}
        self.access_tokens: dict[str, AccessRecord] = {}

    # Registration

    def register_redirect_uri(self, uri: str, client_id: str) -> None:
        _check_redirect_uri(uri)
        app = self.apps[client_id]
        if uri not in app.redirect_uris:
            if len(app.redirect_uris) >= 50:
                raise ValueError("an app can have at most 50 redirect URIs")
            app.redirect_uris.append(uri)

    # Authorize, sign in, consent

    def start_sign_in(self, params: Mapping[str, str]) -> SignIn:
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            raise AuthorizeError("unauthorized_client", "Unknown client or client not enabled")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            raise AuthorizeError("invalid_request", "Invalid redirect_uri")
        if params.get("response_type") != "code":
            raise AuthorizeError("unsupported_response_type", "Invalid response_type")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        if not scopes:
            raise AuthorizeError("invalid_scope", "Invalid scope for client")
        bad = [s for s in scopes if s not in KNOWN_SCOPES]
        if bad:
            removed = [s for s in bad if s in REMOVED_SCOPES]
            detail = "is no longer available to new apps" if removed else "is not a valid scope"
            raise AuthorizeError("invalid_scope", f"Invalid scope for client: {' '.join(bad)} {detail}")
        challenge = params.get("code_challenge") or None
        if challenge is not None:
            if params.get("code_challenge_method") != "S256":
                raise AuthorizeError("invalid_request", "Transform algorithm not supported: code_challenge_method must be S256")
            if not re.fullmatch(r"[A-Za-z0-9_-]{43}", challenge):
                raise AuthorizeError("invalid_request", "Invalid code_challenge")
        elif app.secret is None:
            raise AuthorizeError("invalid_request", "code challenge required")
        now = self.clock.time()
        self.sign_ins = {k: v for k, v in self.sign_ins.items() if v.expires_at > now}
        sign_in = SignIn(secrets.token_urlsafe(18), app.client_id, redirect_uri, scopes,
                         params.get("state"), params.get("nonce"), challenge, now + SIGN_IN_LIFETIME)
        self.sign_ins[sign_in.rid] = sign_in
        return sign_in

    def sign_in(self, rid: str) -> SignIn:
        found = self.sign_ins.get(rid)
        if found is None or found.expires_at <= self.clock.time():
            raise AuthorizeError("invalid_request", "Your sign-in took too long: start again from the app")
        return found

    def check_password(self, email: str, password: str) -> DemoUser | None:
        user = self.users.get(email.strip().lower())
        if user is None or not secrets.compare_digest(user.password, password):
            return None
        return user

    def open_session(self, email: str) -> str:
        sid = secrets.token_urlsafe(24)
        self.sessions[sid] = email
        return sid

    def session_user(self, sid: str | None) -> DemoUser | None:
        email = self.sessions.get(sid or "")
        return self.users.get(email) if email else None

    def connected_tenants(self, email: str, client_id: str) -> list[str]:
        return [c.tenant_id for c in self.connections.values()
                if c.email == email and c.client_id == client_id and c.active]

    def decide(self, rid: str, email: str, tenant_ids: list[str], *, allow: bool) -> str:
        """The consent page's answer: the URL the browser goes back to."""
        sign_in = self.sign_in(rid)
        del self.sign_ins[rid]
        base = sign_in.redirect_uri + ("&" if "?" in sign_in.redirect_uri else "?")
        state = {"state": sign_in.state} if sign_in.state is not None else {}
        if not allow:
            return base + urlencode({"error": "access_denied", **state})
        allowed = self.user_tenants.get(email, [])
        unknown = [t for t in tenant_ids if t not in allowed]
        if unknown:
            raise AuthorizeError("access_denied", "You do not have access to that organisation")
        auth_event_id = self._connect(email, sign_in.client_id, tenant_ids)
        scopes = self._grant(email, sign_in.client_id, sign_in.scopes)
        code = tokens.code()
        self.codes[code] = Code(sign_in.client_id, sign_in.redirect_uri, email, scopes, sign_in.scopes,
                                sign_in.code_challenge, sign_in.nonce, auth_event_id,
                                self.clock.time() + CODE_LIFETIME)
        session_state = secrets.token_urlsafe(32)
        return base + urlencode({"code": code, "scope": " ".join(sign_in.scopes), **state,
                                 "session_state": session_state})

    def _grant(self, email: str, client_id: str, scopes: tuple[str, ...]) -> tuple[str, ...]:
        granted = self.grants.setdefault((email, client_id), set())
        granted.update(scopes)
        return tuple(s for s in _scope_order(granted))

    def _connect(self, email: str, client_id: str, tenant_ids: list[str]) -> str:
        auth_event_id = str(uuid.uuid4())
        now = self.clock.now()
        existing = {(c.email, c.client_id, c.tenant_id): c for c in self.connections.values()}
        for tenant_id in dict.fromkeys(tenant_ids):
            conn = existing.get((email, client_id, tenant_id))
            if conn is None:
                conn = Connection(str(uuid.uuid4()), email, client_id, tenant_id, auth_event_id, now, now)
                self.connections[conn.id] = conn
            else:
                conn.active, conn.auth_event_id, conn.updated = True, auth_event_id, now
        return auth_event_id

    # Token endpoint

    def _client(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> App:
        client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret"))
        app = self.apps.get(client_id)
        if app is None:
            raise TokenError("invalid_client")
        if app.secret is not None and not secrets.compare_digest(app.secret, secret or ""):
            raise TokenError("invalid_client")
        return app

    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        app = self._client(form, basic)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise TokenError("invalid_request", "grant_type is missing")
        if grant_type == "authorization_code":
            return self._exchange_code(app, form)
        if grant_type == "refresh_token":
            return self._refresh(app, form)
        raise TokenError("unsupported_grant_type")

    def _exchange_code(self, app: App, form: Mapping[str, str]) -> dict[str, Any]:
        now = self.clock.time()
        code = self.codes.get(form.get("code", ""))
        if code is None or code.used or code.expires_at <= now or code.client_id != app.client_id:
            raise TokenError("invalid_grant")
        if form.get("redirect_uri") != code.redirect_uri:
            raise TokenError("invalid_grant", "redirect_uri does not match")
        verifier = form.get("code_verifier")
        if code.code_challenge is not None:
            if not verifier or not _VERIFIER.match(verifier):
                raise TokenError("invalid_grant", "code_verifier is missing or malformed")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if not secrets.compare_digest(digest, code.code_challenge):
                raise TokenError("invalid_grant", "code_verifier does not match the challenge")
        elif verifier:
            raise TokenError("invalid_grant", "code_verifier sent without a code_challenge")
        code.used = True
        family = Family(str(uuid.uuid4()), app.client_id, code.email, code.scopes, code.auth_event_id,
                        secrets.token_hex(16), code.nonce)
        self.families[family.id] = family
        return self._issue(family, id_token="openid" in code.requested)

    def _refresh(self, app: App, form: Mapping[str, str]) -> dict[str, Any]:
        now = self.clock.time()
        record = self.refresh_tokens.get(form.get("refresh_token", ""))
        if record is None:
            raise TokenError("invalid_grant")
        family = self.families[record.family_id]
        if family.revoked or family.client_id != app.client_id or now >= record.issued_at + REFRESH_IDLE:
            raise TokenError("invalid_grant")
        if record.superseded_at is not None and now >= record.superseded_at + REFRESH_GRACE:
            raise TokenError("invalid_grant")
        if record.superseded_at is None:
            record.superseded_at = now
        return self._issue(family, id_token="openid" in family.scopes)

    def _issue(self, family: Family, *, id_token: bool) -> dict[str, Any]:
        now = self.clock.time()
        user = self.users[family.email]
        access = tokens.access_token(now=now, lifetime=ACCESS_LIFETIME, client_id=family.client_id,
                                     user_id=user.user_id, session_id=family.session_id,
                                     auth_event_id=family.auth_event_id, scopes=family.scopes)
        self.access_tokens[access] = AccessRecord(family.id, family.client_id, family.email, family.scopes,
                                                  now + ACCESS_LIFETIME)
        body: dict[str, Any] = {}
        if id_token:
            body["id_token"] = tokens.id_token(now=now, client_id=family.client_id, user_id=user.user_id,
                                               session_id=family.session_id, email=user.email,
                                               first_name=user.first_name, last_name=user.last_name,
                                               access=access, nonce=family.nonce)
        body.update({"access_token": access, "expires_in": ACCESS_LIFETIME, "token_type": "Bearer"})
        if "offline_access" in family.scopes:
            refresh = tokens.refresh_token()
            self.refresh_tokens[refresh] = RefreshRecord(family.id, now)
            body["refresh_token"] = refresh
        body["scope"] = " ".join(family.scopes)
        return body

    def revoke(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> None:
        """RFC 7009: unknown tokens and other apps' tokens are a silent success."""
        app = self._client(form, basic)
        token = form.get("token", "")
        record = self.refresh_tokens.get(token) or self.access_tokens.get(token)
        if record is None:
            return
        family = self.families[record.family_id]
        if family.client_id != app.client_id:
            return
        family.revoked = True
        for conn in self.connections.values():
            if conn.email == family.email and conn.client_id == app.client_id:
                conn.active = False
        self.grants.pop((family.email, app.client_id), None)

    # API access

    def authenticate(self, authorization: str | None) -> AccessRecord:
        scheme, _, token = (authorization or "").partition(" ")
        record = self.access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if record is None or record.revoked:
            raise BearerError("AuthenticationUnsuccessful")
        if self.clock.time() >= record.expires_at:
            raise BearerError(token_expired_detail(record.expires_at))
        return record

    def active_connections(self, email: str, client_id: str) -> list[Connection]:
        return [c for c in self.connections.values() if c.email == email and c.client_id == client_id and c.active]

    def delete_connection(self, connection_id: str, email: str, client_id: str) -> bool:
        conn = self.connections.get(connection_id)
        if conn is None or not conn.active or conn.email != email or conn.client_id != client_id:
            return False
        conn.active = False
        return True

    # Control

    def expire_access_tokens(self) -> None:
        now = self.clock.time()
        for record in self.access_tokens.values():
            record.expires_at = min(record.expires_at, now)

    def revoke_user(self, email: str) -> None:
        for family in self.families.values():
            if family.email == email:
                family.revoked = True
        for record in self.access_tokens.values():
            if record.email == email:
                record.revoked = True

    def issue(self, email: str, client_id: str, tenant_ids: list[str], scopes: tuple[str, ...]) -> dict[str, Any]:
        """Consent and code exchange in one step, for tests that are not about the browser flow."""
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown or email not in self.users:
            raise ValueError(f"unknown user or scopes: {email} {unknown}")
        auth_event_id = self._connect(email, client_id, tenant_ids)
        granted = self._grant(email, client_id, scopes)
        family = Family(str(uuid.uuid4()), client_id, email, granted, auth_event_id, secrets.token_hex(16))
        self.families[family.id] = family
        return self._issue(family, id_token="openid" in scopes)

    def disconnect(self, email: str, tenant_id: str, client_id: str) -> None:
        for conn in self.connections.values():
            if conn.email == email and conn.tenant_id == tenant_id and conn.client_id == client_id:
                conn.active = False


_SCOPE_RANK = {"openid": 0, "profile": 1, "email": 2}


def _scope_order(scopes: set[str]) -> list[str]:
    """Identity scopes first, offline_access last, as Xero lists them."""
    return sorted(scopes, key=lambda s: (_SCOPE_RANK.get(s, 5 if s == "offline_access" else 3), s))
