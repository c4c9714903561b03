"""HTTP for login.xero.com (authorize, login, consent), identity.xero.com (token, revocation, OIDC
discovery) and api.xero.com/connections."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping
from urllib.parse import unquote_plus

from aiohttp import web

from sandbox.xero import pages, tokens, wire
from sandbox.xero.identity import Identity
from sandbox.xero.identity_records import IDENTITY_SCOPES, AuthorizeError, BearerError, SignIn, TokenError
from sandbox.xero.limits import RateLimiter
from sandbox.xero.orgs import Org

SESSION_COOKIE = "xero_sandbox_session"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/html", charset="utf-8")


def _redirect(location: str, status: int = 302) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


def _error_page(exc: AuthorizeError) -> web.Response:
    # Xero shows its error page with status 500 and never redirects to an unverified redirect URI.
    return _html(pages.error_page(exc.error, exc.description), status=500)


def _basic(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")  # unreadable credentials: invalid_client
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


class IdentityRoutes:
    def __init__(self, *, identity: Identity, orgs: Callable[[], Mapping[str, Org]], limiter: RateLimiter,
                 app_names: Mapping[str, str]) -> None:
        self.identity, self.orgs, self.limiter, self.app_names = identity, orgs, limiter, app_names

    def add_to(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/identity/connect/authorize", self.authorize)
        r.add_post("/identity/login", self.login)
        r.add_get("/identity/consent", self.consent_form)
        r.add_post("/identity/consent", self.consent)
        r.add_get("/identity/logout", self.logout)
        r.add_post("/connect/token", self.token)
        r.add_post("/connect/revocation", self.revocation)
        r.add_get("/.well-known/openid-configuration", self.discovery)
        r.add_get("/.well-known/openid-configuration/jwks", self.jwks)
        for base in ("/connections", "/Connections"):
            r.add_get(base, self.list_connections)
            r.add_delete(base + "/{id}", self.delete_connection)

    # Browser pages

    def _consent(self, sign_in: SignIn, email: str, *, error: str | None = None,
                 chosen: list[str] | None = None) -> web.Response:
        user = self.identity.users[email]
        orgs = self.orgs()
        connected = set(self.identity.connected_tenants(email, sign_in.client_id))
        tenants = [t for t in self.identity.user_tenants.get(email, []) if t in orgs]
        if chosen is None:
            chosen = [t for t in tenants if t in connected] or tenants[:1]
        choices = [(t, orgs[t].name, t in chosen) for t in tenants] if self._needs_org(sign_in) else []
        return _html(pages.consent_page(sign_in.rid, self.app_names[sign_in.client_id], user, sign_in.scopes,
                                        choices, error=error))

    @staticmethod
    def _needs_org(sign_in: SignIn) -> bool:
        return any(s not in IDENTITY_SCOPES for s in sign_in.scopes)

    def _login(self, sign_in: SignIn, *, email: str = "", error: str | None = None) -> web.Response:
        return _html(pages.login_page(sign_in.rid, list(self.identity.users.values()), email=email, error=error))

    async def authorize(self, request: web.Request) -> web.Response:
        try:
            sign_in = self.identity.start_sign_in(request.query)
        except AuthorizeError as exc:
            return _error_page(exc)
        user = self.identity.session_user(request.cookies.get(SESSION_COOKIE))
        if user is not None:
            return self._consent(sign_in, user.email)
        return self._login(sign_in)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            sign_in = self.identity.sign_in(str(form.get("rid", "")))
        except AuthorizeError as exc:
            return _error_page(exc)
        email = str(form.get("email", ""))
        user = self.identity.check_password(email, str(form.get("password", "")))
        if user is None:
            return self._login(sign_in, email=email, error="Your email or password is incorrect")
        response = _redirect(f"/identity/consent?rid={sign_in.rid}", 303)
        response.set_cookie(SESSION_COOKIE, self.identity.open_session(user.email), httponly=True,
                            samesite="Lax", path="/identity")
        return response

    async def consent_form(self, request: web.Request) -> web.Response:
        try:
            sign_in = self.identity.sign_in(request.query.get("rid", ""))
        except AuthorizeError as exc:
            return _error_page(exc)
        user = self.identity.session_user(request.cookies.get(SESSION_COOKIE))
        if user is None:
            return self._login(sign_in)
        return self._consent(sign_in, user.email)

    async def consent(self, request: web.Request) -> web.Response:
        form = await request.post()
        try:
            sign_in = self.identity.sign_in(str(form.get("rid", "")))
        except AuthorizeError as exc:
            return _error_page(exc)
        user = self.identity.session_user(request.cookies.get(SESSION_COOKIE))
        if user is None:
            return self._login(sign_in)
        allow = form.get("action") == "allow"
        chosen = [str(t) for t in form.getall("tenant", [])]
        has_orgs = bool(self.identity.user_tenants.get(user.email))
        if allow and self._needs_org(sign_in) and has_orgs and not chosen:
            return self._consent(sign_in, user.email, error="Choose at least one organisation", chosen=[])
        try:
            location = self.identity.decide(sign_in.rid, user.email, chosen if self._needs_org(sign_in) else [],
                                            allow=allow)
        except AuthorizeError as exc:
            return _error_page(exc)
        return _redirect(location)

    async def logout(self, request: web.Request) -> web.Response:
        self.identity.sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        try:
            sign_in = self.identity.sign_in(request.query.get("rid", ""))
        except AuthorizeError as exc:
            return _error_page(exc)
        response = self._login(sign_in)
        response.del_cookie(SESSION_COOKIE, path="/identity")
        return response

    # Token service

    async def _form(self, request: web.Request) -> dict[str, str]:
        if request.content_type != "application/x-www-form-urlencoded":
            raise TokenError("invalid_request")
        form = await request.post()
        return {k: str(v) for k, v in form.items()}

    async def token(self, request: web.Request) -> web.Response:
        try:
            body = self.identity.token(await self._form(request), _basic(request))
        except TokenError as exc:
            return wire.json_response({"error": exc.error}, status=400, headers=_NO_STORE)
        return wire.json_response(body, headers=_NO_STORE)

    async def revocation(self, request: web.Request) -> web.Response:
        try:
            self.identity.revoke(await self._form(request), _basic(request))
        except TokenError as exc:
            return wire.json_response({"error": exc.error}, status=400)
        return web.Response(status=200)

    async def discovery(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return wire.json_response({
            "issuer": tokens.ISSUER, "jwks_uri": f"{base}/.well-known/openid-configuration/jwks",
            "authorization_endpoint": f"{base}/identity/connect/authorize",
            "token_endpoint": f"{base}/connect/token", "revocation_endpoint": f"{base}/connect/revocation",
            "response_types_supported": ["code"], "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"], "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": sorted(IDENTITY_SCOPES), "subject_types_supported": ["public"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })

    async def jwks(self, request: web.Request) -> web.Response:
        return wire.json_response(tokens.jwks())

    # api.xero.com/connections

    async def list_connections(self, request: web.Request) -> web.Response:
        cid = wire.correlation_id()
        try:
            access = self.identity.authenticate(request.headers.get("Authorization"))
        except BearerError as exc:
            return wire.json_response(wire.problem(401, exc.detail, cid), status=401,
                                      headers={"Xero-Correlation-Id": cid})
        headers = {"Xero-Correlation-Id": cid, "X-AppMinLimit-Remaining": self.limiter.count_app_call()}
        event = request.query.get("authEventId")
        orgs = self.orgs()
        items = []
        for conn in self.identity.active_connections(access.email, access.client_id):
            if (event and conn.auth_event_id != event.lower()) or conn.tenant_id not in orgs:
                continue
            items.append({"id": conn.id, "authEventId": conn.auth_event_id, "tenantId": conn.tenant_id,
                          "tenantType": "ORGANISATION", "tenantName": orgs[conn.tenant_id].name,
                          "createdDateUtc": wire.connection_time(conn.created),
                          "updatedDateUtc": wire.connection_time(conn.updated)})
        return wire.json_response(items, headers=headers)

    async def delete_connection(self, request: web.Request) -> web.Response:
        cid = wire.correlation_id()
        try:
            access = self.identity.authenticate(request.headers.get("Authorization"))
        except BearerError as exc:
            return wire.json_response(wire.problem(401, exc.detail, cid), status=401,
                                      headers={"Xero-Correlation-Id": cid})
        headers = {"Xero-Correlation-Id": cid, "X-AppMinLimit-Remaining": self.limiter.count_app_call()}
        try:
            connection_id = str(uuid.UUID(request.match_info["id"]))
        except ValueError:
            return web.Response(status=404, headers=headers)
        if not self.identity.delete_connection(connection_id, access.email, access.client_id):
            return web.Response(status=404, headers=headers)
        return web.Response(status=204, headers=headers)
