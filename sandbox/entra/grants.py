"""What the Entra sandbox remembers: sign-ins under way, authorization codes, refresh tokens, consents.

The token endpoint's two grants live here: `authorization_code` (with PKCE and the nonce echoed into the id
token) and `refresh_token` (for any resource the user consented to; each use returns a new refresh token).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.clock import Clock
from sandbox.entra import errors
from sandbox.entra.directory import AppRegistration, User, resolve_tenant, tenant_by_id, user_by_oid
from sandbox.entra.scopes import ResourceRegistry, ResourceScopes, ScopeRequest, parse_scopes
from sandbox.entra.tokens import SigningKey, access_token_claims, client_info, id_token_claims

CODE_LIFETIME = 600.0
REFRESH_INACTIVITY = 90 * 24 * 3600.0
SIGN_IN_LIFETIME = 3600.0
MULTI_TENANT_SEGMENTS = ("organizations", "common")


@dataclass
class PendingSignIn:
    """One trip through the authorize pages, keyed by an opaque `ctx` carried in the forms."""

    ctx: str
    tenant_segment: str
    registration: AppRegistration
    redirect_uri: str
    response_mode: str
    state: str | None
    nonce: str | None
    scope: ScopeRequest
    code_challenge: str | None
    code_challenge_method: str
    login_hint: str
    prompt: str
    want_client_info: bool
    max_age: int | None
    created_at: float
    user_oid: str | None = None


@dataclass
class AuthCode:
    user_oid: str
    client_id: str
    redirect_uri: str
    scope: ScopeRequest
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    issued_at: float
    auth_time: int | None
    redeemed: bool = False


@dataclass
class RefreshGrant:
    user_oid: str
    client_id: str
    issued_at: float


@dataclass
class EntraState:
    clock: Clock
    key: SigningKey
    registry: ResourceRegistry
    issuer_base: str = ""
    sign_ins: dict[str, PendingSignIn] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)
    consents: dict[tuple[str, str], set[tuple[str, str]]] = field(default_factory=dict)
    tokens_valid_from: dict[str, float] = field(default_factory=dict)
    needs_interaction: set[str] = field(default_factory=set)
    issued_access_tokens: set[str] = field(default_factory=set)
    revoked_access_tokens: set[str] = field(default_factory=set)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (the resource answers 401)."""
        self.revoked_access_tokens |= self.issued_access_tokens
        self.issued_access_tokens = set()

    def clear(self) -> None:
        self.sign_ins.clear()
        self.codes.clear()
        self.refresh_tokens.clear()
        self.consents.clear()
        self.tokens_valid_from.clear()
        self.needs_interaction.clear()
        self.issued_access_tokens.clear()
        self.revoked_access_tokens.clear()

    # Consent -------------------------------------------------------------------------------------------

    def missing_consent(self, user: User, registration: AppRegistration, scope: ScopeRequest) -> list[str]:
        granted = self.consents.get((user.oid, registration.client_id), set())
        missing: list[str] = []
        for resource in scope.resources:
            for name in resource.granted(registration):
                if (resource.app.app_id, name) not in granted:
                    missing.append(resource.app.descriptions.get(name, name))
        if "offline_access" in scope.oidc and ("oidc", "offline_access") not in granted:
            missing.append("offline_access")
        return missing

    def grant_consent(self, user: User, registration: AppRegistration, scope: ScopeRequest) -> None:
        granted = self.consents.setdefault((user.oid, registration.client_id), set())
        for resource in scope.resources:
            granted.update((resource.app.app_id, name) for name in resource.granted(registration))
        granted.update(("oidc", name) for name in scope.oidc)

    def _consented(self, user: User, registration: AppRegistration, resource: ResourceScopes) -> bool:
        granted = self.consents.get((user.oid, registration.client_id), set())
        if resource.app.short_scope_names and resource.names == ("User.Read",):
            return True  # signing in (openid/profile) consents to reading one's own profile
        return all((resource.app.app_id, name) in granted for name in resource.granted(registration))

    # Codes ---------------------------------------------------------------------------------------------

    def issue_code(self, pending: PendingSignIn) -> str:
        assert pending.user_oid is not None
        code = "0." + secrets.token_urlsafe(48)
        now = self.clock.time()
        self.codes[code] = AuthCode(
            user_oid=pending.user_oid,
            client_id=pending.registration.client_id,
            redirect_uri=pending.redirect_uri,
            scope=pending.scope,
            nonce=pending.nonce,
            code_challenge=pending.code_challenge,
            code_challenge_method=pending.code_challenge_method,
            issued_at=now,
            auth_time=int(now) if pending.max_age is not None else None,
        )
        return code

    # Token endpoint ------------------------------------------------------------------------------------

    def redeem_code(
        self, form: dict[str, str], registration: AppRegistration, tenant_segment: str
    ) -> dict[str, Any]:
        code = form.get("code", "")
        if not code:
            raise errors.missing_parameter("code")
        grant = self.codes.get(code)
        if grant is None or grant.client_id != registration.client_id:
            raise errors.malformed_grant()
        if grant.redeemed:
            raise errors.code_redeemed()
        if self.clock.time() - grant.issued_at > CODE_LIFETIME:
            raise errors.code_expired()
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise errors.redirect_mismatch(form.get("redirect_uri", ""), registration.client_id)
        if grant.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier:
                raise errors.missing_parameter("code_verifier")
            if not _pkce_matches(verifier, grant.code_challenge, grant.code_challenge_method):
                raise errors.pkce_mismatch()
        user = self._user(grant.user_oid)
        self._check_tenant(user, tenant_segment)
        scope = grant.scope
        if form.get("scope"):
            scope = parse_scopes(form["scope"], self.registry, registration, _tenant_name(user))
        grant.redeemed = True
        return self._token_response(
            user, registration, scope, nonce=grant.nonce, auth_time=grant.auth_time, form=form
        )

    def redeem_refresh(
        self, form: dict[str, str], registration: AppRegistration, tenant_segment: str
    ) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        if not token:
            raise errors.missing_parameter("refresh_token")
        grant = self.refresh_tokens.get(token)
        if grant is None or grant.client_id != registration.client_id:
            raise errors.malformed_grant()
        now = self.clock.time()
        issued = datetime.fromtimestamp(grant.issued_at, UTC)
        if now - grant.issued_at > REFRESH_INACTIVITY:
            raise errors.refresh_inactive(issued)
        valid_from = self.tokens_valid_from.get(grant.user_oid)
        if valid_from is not None and grant.issued_at < valid_from:
            raise errors.grant_revoked(issued, datetime.fromtimestamp(valid_from, UTC))
        user = self._user(grant.user_oid)
        self._check_tenant(user, tenant_segment)
        scope = parse_scopes(form.get("scope", ""), self.registry, registration, _tenant_name(user))
        resource = scope.single_resource()
        if user.oid in self.needs_interaction:
            raise errors.interaction_required(resource.app.app_id)
        if not self._consented(user, registration, resource):
            raise errors.consent_required(registration.client_id, registration.display_name)
        return self._token_response(user, registration, scope, nonce=None, auth_time=None, form=form)

    def _token_response(
        self,
        user: User,
        registration: AppRegistration,
        scope: ScopeRequest,
        *,
        nonce: str | None,
        auth_time: int | None,
        form: dict[str, str],
    ) -> dict[str, Any]:
        resource = scope.single_resource()
        if not self._consented(user, registration, resource):
            raise errors.consent_required(registration.client_id, registration.display_name)
        now = int(self.clock.time())
        lifetime = 3600 + secrets.randbelow(1800)  # Entra picks 60-90 minutes
        granted = resource.granted(registration)
        access = access_token_claims(
            user=user,
            app=registration,
            resource=resource.app,
            audience=resource.audience,
            scopes=granted,
            issuer_base=self.issuer_base,
            now=now,
            lifetime=lifetime,
        )
        self.issued_access_tokens.add(access["uti"])
        wire_scopes = resource.wire(granted)
        if resource.app.short_scope_names:
            wire_scopes = tuple(sorted(scope.oidc - {"offline_access"})) + wire_scopes
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(wire_scopes),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.key.sign(access),
        }
        if "offline_access" in scope.oidc:
            refresh = "1." + secrets.token_urlsafe(64)
            self.refresh_tokens[refresh] = RefreshGrant(user.oid, registration.client_id, self.clock.time())
            response["refresh_token"] = refresh
        if "openid" in scope.oidc:
            response["id_token"] = self.key.sign(
                id_token_claims(
                    user=user,
                    app=registration,
                    issuer_base=self.issuer_base,
                    now=now,
                    nonce=nonce,
                    auth_time=auth_time,
                )
            )
        if form.get("client_info") == "1":
            response["client_info"] = client_info(user)
        return response

    def _user(self, oid: str) -> User:
        user = user_by_oid(oid)
        if user is None:
            raise errors.malformed_grant()
        return user

    def _check_tenant(self, user: User, tenant_segment: str) -> None:
        if tenant_segment.lower() in MULTI_TENANT_SEGMENTS:
            return
        tenant = resolve_tenant(tenant_segment)
        if tenant is None:
            raise errors.unknown_tenant(tenant_segment)
        if tenant.id != user.tenant_id:
            raise errors.user_not_in_tenant(user.upn, tenant.name)


def _pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
        return hmac.compare_digest(expected, challenge)
    return hmac.compare_digest(verifier, challenge)


def _tenant_name(user: User) -> str:
    tenant = tenant_by_id(user.tenant_id)
    return tenant.name if tenant else user.tenant_id
