"""The interactive half of the authorize endpoint: login page, consent page, redirect back with a code.

GET /{tenant}/oauth2/v2.0/authorize validates the request (client, exact redirect URI, tenant, scopes) and
shows the login page; POST /{tenant}/login checks the password and shows the consent page when the user has
not consented yet (or `prompt=consent`); POST /{tenant}/consent with Accept redirects with `code`,
`client_info`, `state` and `session_state`; Cancel redirects with `error=access_denied`. Errors about the
client or the redirect URI are shown on a page, never sent to an unverified redirect URI.
"""

from __future__ import annotations

import hmac
import secrets
import uuid
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from aiohttp import web

from sandbox.clock import Clock
from sandbox.entra import errors, pages
from sandbox.entra.directory import (
    OIDC_DESCRIPTIONS,
    AppRegistration,
    User,
    resolve_tenant,
    tenant_by_id,
    user_by_oid,
    user_by_upn,
)
from sandbox.entra.grants import MULTI_TENANT_SEGMENTS, SIGN_IN_LIFETIME, EntraState, PendingSignIn
from sandbox.entra.scopes import ResourceRegistry, parse_scopes
from sandbox.entra.tokens import client_info

if TYPE_CHECKING:
    from sandbox.entra.server import EntraSandbox


class SignInPages:
    def __init__(self, sandbox: EntraSandbox) -> None:
        self.sandbox = sandbox

    @property
    def state(self) -> EntraState:
        return self.sandbox.state

    @property
    def apps(self) -> dict[str, AppRegistration]:
        return self.sandbox.apps

    @property
    def redirect_uris(self) -> set[str]:
        return self.sandbox.redirect_uris

    @property
    def registry(self) -> ResourceRegistry:
        return self.sandbox.registry

    @property
    def clock(self) -> Clock:
        return self.sandbox.clock

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        segment = request.match_info["tenant"]
        query = request.query
        client_id = query.get("client_id", "")
        if not client_id:
            return _error_page(errors.missing_parameter("client_id"))
        registration = self.apps.get(client_id)
        if registration is None:
            return _error_page(errors.unknown_client(client_id, segment))
        redirect_uri = query.get("redirect_uri", "")
        if not redirect_uri:
            return _error_page(errors.AadError("invalid_request", 900971, "No reply address provided."))
        if redirect_uri not in self.redirect_uris:
            return _error_page(errors.redirect_mismatch(redirect_uri, client_id))
        if segment.lower() not in MULTI_TENANT_SEGMENTS and resolve_tenant(segment) is None:
            return _error_page(errors.unknown_tenant(segment))
        response_mode = query.get("response_mode", "query")
        state = query.get("state")
        if response_mode not in ("query", "fragment", "form_post"):
            response_mode = "query"
        if query.get("response_type", "") != "code":
            error = errors.unsupported_response_type(query.get("response_type", ""))
            return _redirect_error(redirect_uri, response_mode, state, error)
        method = query.get("code_challenge_method", "plain")
        challenge = query.get("code_challenge")
        if challenge is not None and method not in ("plain", "S256"):
            error = errors.AadError("invalid_request", 5000, f"Unsupported code_challenge_method '{method}'.")
            return _redirect_error(redirect_uri, response_mode, state, error)
        tenant = resolve_tenant(segment)
        try:
            scope = parse_scopes(query.get("scope", ""), self.registry, registration, tenant.name if tenant else segment)
        except errors.AadError as exc:
            return _redirect_error(redirect_uri, response_mode, state, exc)
        prompt = query.get("prompt", "")
        if prompt == "none":
            error = errors.AadError(
                "login_required", 50058, "A silent sign-in request was sent but no user is signed in."
            )
            return _redirect_error(redirect_uri, response_mode, state, error)
        max_age = query.get("max_age")
        pending = PendingSignIn(
            ctx=secrets.token_urlsafe(24),
            tenant_segment=segment,
            registration=registration,
            redirect_uri=redirect_uri,
            response_mode=response_mode,
            state=state,
            nonce=query.get("nonce"),
            scope=scope,
            code_challenge=challenge,
            code_challenge_method=method,
            login_hint=query.get("login_hint", ""),
            prompt=prompt,
            want_client_info=query.get("client_info") == "1",
            max_age=int(max_age) if max_age and max_age.isdigit() else None,
            created_at=self.clock.time(),
        )
        self._forget_old_sign_ins()
        self.state.sign_ins[pending.ctx] = pending
        return self._login_form(pending)

    def _login_form(self, pending: PendingSignIn, error: str = "") -> web.Response:
        html = pages.login_page(
            action=f"/{pending.tenant_segment}/login",
            ctx=pending.ctx,
            app_name=pending.registration.display_name,
            login_hint=pending.login_hint,
            error=error,
        )
        return web.Response(text=html, content_type="text/html")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        pending = self.state.sign_ins.get(str(form.get("ctx", "")))
        if pending is None:
            return _error_page(errors.AadError("invalid_request", 90014, "Your sign-in session has expired. Start again."))
        username = str(form.get("username", ""))
        user = user_by_upn(username)
        if user is None:
            return self._login_form(
                pending,
                "This username may be incorrect. Make sure you typed it correctly. Otherwise, contact your admin.",
            )
        if not hmac.compare_digest(str(form.get("password", "")), user.password):
            return self._login_form(
                pending, "Your account or password is incorrect. If you don't remember your password, reset it now."
            )
        tenant = resolve_tenant(pending.tenant_segment)
        if tenant is not None and tenant.id != user.tenant_id:
            return _error_page(errors.user_not_in_tenant(user.upn, tenant.name))
        pending.user_oid = user.oid
        missing = self.state.missing_consent(user, pending.registration, pending.scope)
        if pending.prompt == "consent" and not missing:
            missing = self._all_permissions(pending)
        if missing:
            publisher = tenant_by_id(pending.registration.publisher_tenant_id)
            html = pages.consent_page(
                action=f"/{pending.tenant_segment}/consent",
                ctx=pending.ctx,
                app_name=pending.registration.display_name,
                publisher=publisher.name if publisher else "",
                upn=user.upn,
                permissions=missing,
            )
            return web.Response(text=html, content_type="text/html")
        return self._complete(pending)

    async def consent(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        pending = self.state.sign_ins.get(str(form.get("ctx", "")))
        if pending is None or pending.user_oid is None:
            return _error_page(errors.AadError("invalid_request", 90014, "Your sign-in session has expired. Start again."))
        if form.get("action") != "accept":
            del self.state.sign_ins[pending.ctx]
            return _redirect_error(pending.redirect_uri, pending.response_mode, pending.state, errors.declined_consent())
        user = _signed_in_user(pending)
        self.state.grant_consent(user, pending.registration, pending.scope)
        return self._complete(pending)

    def _all_permissions(self, pending: PendingSignIn) -> list[str]:
        names = [
            resource.app.descriptions.get(name, name)
            for resource in pending.scope.resources
            for name in resource.granted(pending.registration)
        ]
        return names + [OIDC_DESCRIPTIONS[name] for name in sorted(pending.scope.oidc) if name in OIDC_DESCRIPTIONS]

    def _complete(self, pending: PendingSignIn) -> web.StreamResponse:
        del self.state.sign_ins[pending.ctx]
        user = _signed_in_user(pending)
        fields = {"code": self.state.issue_code(pending)}
        if pending.want_client_info:
            fields["client_info"] = client_info(user)
        if pending.state is not None:
            fields["state"] = pending.state
        fields["session_state"] = str(uuid.uuid4())
        return _respond(pending.redirect_uri, pending.response_mode, fields)

    def _forget_old_sign_ins(self) -> None:
        cutoff = self.clock.time() - SIGN_IN_LIFETIME
        for ctx in [c for c, p in self.state.sign_ins.items() if p.created_at < cutoff]:
            del self.state.sign_ins[ctx]


def _signed_in_user(pending: PendingSignIn) -> User:
    user = user_by_oid(pending.user_oid or "")
    if user is None:
        raise web.HTTPBadRequest(text="sign-in has no user")
    return user



def _error_page(error: errors.AadError) -> web.Response:
    return web.Response(
        text=pages.error_page(description=error.text, code=error.code), content_type="text/html", status=400
    )


def _respond(redirect_uri: str, mode: str, fields: dict[str, str]) -> web.StreamResponse:
    if mode == "form_post":
        return web.Response(text=pages.form_post_page(redirect_uri=redirect_uri, fields=fields), content_type="text/html")
    separator = "#" if mode == "fragment" else ("&" if "?" in redirect_uri else "?")
    return web.Response(status=302, headers={"Location": f"{redirect_uri}{separator}{urlencode(fields)}"})


def _redirect_error(redirect_uri: str, mode: str, state: str | None, error: errors.AadError) -> web.StreamResponse:
    fields = {"error": error.error, "error_description": error.description}
    if error.suberror:
        fields["error_subcode"] = error.suberror
    fields["error_uri"] = f"https://login.microsoftonline.com/error?code={error.code}"
    if state is not None:
        fields["state"] = state
    return _respond(redirect_uri, mode, fields)
