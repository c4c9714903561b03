"""The Entra ID sandbox: an aiohttp app real MSAL can use unchanged (served over TLS by the caller).

Endpoints (tenant = `organizations`, `common`, a tenant GUID or domain):
    GET  /common/discovery/instance                      instance discovery, as MSAL calls it
    GET  /{tenant}/v2.0/.well-known/openid-configuration
    GET  /{tenant}/discovery/v2.0/keys                   JWKS
    GET  /{tenant}/oauth2/v2.0/authorize                 login page (then consent page when needed)
    POST /{tenant}/login, /{tenant}/consent              the forms of those pages
    POST /{tenant}/oauth2/v2.0/token                     authorization_code (PKCE) and refresh_token grants
Control (JSON, for `make run` and browser tests) under /_sandbox/entra/. `fail_next` makes the token
endpoint answer like an outage (5xx, `temporarily_unavailable`; see faults.py).

`pages_app` serves the pages a person's browser visits (authorize, login, consent) on their own; the
caller may serve it over plain http on localhost and call `set_pages_url`, so that those pages open
without a certificate warning while everything MSAL calls stays on https (see README.md, "Two origins").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from aiohttp import web

from sandbox.clock import Clock
from sandbox.entra import control, errors
from sandbox.entra.directory import (
    CONNECTOR_APP,
    DYNAMICS_CRM,
    AppRegistration,
    ResourceApp,
    User,
    resolve_tenant,
    user_by_upn,
)
from sandbox.entra.faults import Faults, failure_response
from sandbox.entra.grants import MULTI_TENANT_SEGMENTS, EntraState
from sandbox.entra.scopes import ResourceRegistry
from sandbox.entra.signin import SignInPages
from sandbox.entra.tokens import Claims, SigningKey, TokenCheck, claims_from, same_audience

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class EntraRequest:
    method: str
    path: str
    status: int
    grant_type: str = ""


class EntraSandbox:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.base_url = "https://127.0.0.1"
        self.registry = ResourceRegistry()
        self.state = EntraState(clock=clock, key=SigningKey(), registry=self.registry)
        self.apps: dict[str, AppRegistration] = {CONNECTOR_APP.client_id: CONNECTOR_APP}
        self.redirect_uris: set[str] = set()
        self.requests: list[EntraRequest] = []
        self.faults = Faults()
        # Where the discovery document sends browsers (authorization_endpoint); None: base_url.
        self.pages_base_url: str | None = None
        self.app = web.Application(middlewares=[self._record, self._fault])
        self.pages_app = web.Application(middlewares=[self._record])
        self._routes()

    # Set-up ----------------------------------------------------------------------------------------------

    def set_base_url(self, url: str) -> None:
        if urlsplit(url).scheme != "https":
            logger.warning("MSAL only accepts an https authority; %s will not work with it", url)
        self.base_url = url.rstrip("/")
        self.state.issuer_base = self.base_url

    def set_pages_url(self, url: str) -> None:
        """Send browsers to `url` (where `pages_app` is served) instead of the TLS origin.

        Plain http only on a loopback host: browsers treat http://localhost and http://127.0.0.1 as
        secure contexts and show no warning there, while anywhere else a password would go in clear."""
        parts = urlsplit(url)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
            raise ValueError("the sign-in pages may use http only on localhost")
        self.pages_base_url = url.rstrip("/")

    def register_redirect_uri(self, uri: str) -> None:
        parts = urlsplit(uri)
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1")):
            raise ValueError("Entra accepts https redirect URIs, or http only for localhost")
        self.redirect_uris.add(uri)

    def register_resource(self, audience: str, app: ResourceApp = DYNAMICS_CRM) -> None:
        """Make `audience` a resource tokens can be asked for (Dataverse calls this for GDS and each env)."""
        self.registry.register(audience, app)

    # Control ---------------------------------------------------------------------------------------------

    def expire_tokens(self) -> None:
        """Every access token issued so far is rejected by resources from now on (refresh tokens still work)."""
        self.state.expire_access_tokens()

    def revoke_user(self, upn: str) -> None:
        """Refresh tokens issued to the user so far fail with invalid_grant (AADSTS50173), as after a password
        reset or an admin's revoke-sessions. Access tokens already out stay valid until they expire."""
        user = self._seeded(upn)
        self.state.tokens_valid_from[user.oid] = self.clock.time()

    def require_interaction(self, upn: str, required: bool = True) -> None:
        """Refresh grants for the user fail with interaction_required until the user signs in again."""
        user = self._seeded(upn)
        if required:
            self.state.needs_interaction.add(user.oid)
        else:
            self.state.needs_interaction.discard(user.oid)

    def fail_next(
        self, n: int, status: int = 503, *, retry_after: int | None = None, path_prefix: str | None = None
    ) -> None:
        """The next n token requests (or requests under `path_prefix`) fail as in an outage: `status` (5xx)
        with `temporarily_unavailable` AADSTS90033, and `Retry-After` if given (see faults.py)."""
        self.faults.fail_next(n, status, retry_after=retry_after, path_prefix=path_prefix)

    def reset(self) -> None:
        """Forget codes, tokens, consents, fault switches and the request log (keys and registrations stay)."""
        self.state.clear()
        self.faults.reset()
        self.requests.clear()

    # For resource servers in the same process --------------------------------------------------------------

    def check_access_token(self, token: str, audience: str) -> TokenCheck:
        raw = self.state.key.decode(token)
        if raw is None:
            return TokenCheck(None, "The access token is malformed or was not issued by this authority.")
        claims = claims_from(raw)
        if str(raw.get("uti", "")) in self.state.revoked_access_tokens:
            return TokenCheck(None, "The access token has been revoked.")
        if claims.expires_at <= self.clock.time():
            return TokenCheck(None, "The access token is expired.")
        if not same_audience(claims.audience, audience):
            return TokenCheck(None, f"The access token audience '{claims.audience}' is invalid for this resource.")
        return TokenCheck(claims)

    def verify_access_token(self, token: str, audience: str) -> Claims | None:
        return self.check_access_token(token, audience).claims

    # Routes ------------------------------------------------------------------------------------------------

    def _routes(self) -> None:
        control.add_routes(self.app, self)
        sign_in = SignInPages(self)
        r = self.app.router
        r.add_get("/common/discovery/instance", self._instance_discovery)
        r.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._openid_configuration)
        r.add_get("/{tenant}/discovery/v2.0/keys", self._keys)
        r.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        # The pages are on both origins: the TLS one as in Entra, the http one for browsers when set.
        # Their forms post to relative paths, so a sign-in stays on the origin it started on.
        for router in (r, self.pages_app.router):
            router.add_get("/{tenant}/oauth2/v2.0/authorize", sign_in.authorize)
            router.add_post("/{tenant}/login", sign_in.login)
            router.add_post("/{tenant}/consent", sign_in.consent)

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith("/_sandbox/"):
            grant = ""
            if request.path.endswith("/token") and request.method == "POST":
                grant = str((await request.post()).get("grant_type", ""))
            self.requests.append(EntraRequest(request.method, request.path, response.status, grant))
        return response

    @web.middleware
    async def _fault(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # Inside `_record`, so a failed request is logged with its status; never the control API.
        rule = None if request.path.startswith(control.PREFIX) else self.faults.take(request.method, request.path)
        if rule is None:
            return await handler(request)
        await request.read()
        return failure_response(rule, self.clock.now(), _correlation(request))

    # Discovery -----------------------------------------------------------------------------------------------

    async def _instance_discovery(self, request: web.Request) -> web.Response:
        endpoint = request.query.get("authorization_endpoint", "")
        ours = urlsplit(self.base_url)
        given = urlsplit(endpoint)
        host = ours.netloc
        # MSAL sends `https://{host without port}/{tenant}/oauth2/v2.0/authorize`.
        if (given.hostname or "").lower() != (ours.hostname or "").lower():
            error = errors.AadError(
                "invalid_instance",
                50049,
                "Unknown or invalid instance.",
            )
            return web.json_response(error.body(self.clock.now(), _correlation(request)), status=400)
        tenant = given.path.strip("/").split("/")[0] or "common"
        return web.json_response({
            "tenant_discovery_endpoint": f"{self.base_url}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })

    async def _openid_configuration(self, request: web.Request) -> web.Response:
        segment = request.match_info["tenant"]
        if segment.lower() in MULTI_TENANT_SEGMENTS:
            path, issuer_tenant, region = segment.lower(), "{tenantid}", None
        else:
            tenant = resolve_tenant(segment)
            if tenant is None:
                return web.json_response(errors.unknown_tenant(segment).body(self.clock.now()), status=400)
            path, issuer_tenant, region = tenant.id, tenant.id, "OC"
        base = f"{self.base_url}/{path}"
        # MSAL builds the auth URL from this field as given (msal/application.py
        # initiate_auth_code_flow) and checks the scheme only of the authority and token_endpoint
        # (msal/authority.py canonicalize): the browser's page may be on another origin.
        pages = f"{self.pages_base_url or self.base_url}/{path}"
        return web.json_response({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.base_url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{pages}/oauth2/v2.0/authorize",
            "code_challenge_methods_supported": ["plain", "S256"],
            "claims_supported": [
                "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username",
                "name", "tid", "ver", "at_hash", "c_hash", "email",
            ],
            "tenant_region_scope": region,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        })

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.key.jwks())

    # Authorize and its pages ------------------------------------------------------------------------------

    # Token endpoint -------------------------------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        try:
            registration = self._authenticate_client(request, form)
            segment = request.match_info["tenant"]
            if segment.lower() not in MULTI_TENANT_SEGMENTS and resolve_tenant(segment) is None:
                raise errors.unknown_tenant(segment)
            grant_type = form.get("grant_type", "")
            if grant_type == "authorization_code":
                body = self.state.redeem_code(form, registration, segment)
            elif grant_type == "refresh_token":
                body = self.state.redeem_refresh(form, registration, segment)
            elif not grant_type:
                raise errors.missing_parameter("grant_type")
            else:
                raise errors.unsupported_grant(grant_type)
        except errors.AadError as exc:
            return web.json_response(
                exc.body(self.clock.now(), _correlation(request)), status=exc.status, headers=_NO_STORE
            )
        return web.json_response(body, headers=_NO_STORE)

    def _authenticate_client(self, request: web.Request, form: dict[str, str]) -> AppRegistration:
        client_id, secret = form.get("client_id", ""), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise errors.missing_secret() from None
            basic_id, _, basic_secret = decoded.partition(":")
            client_id, secret = client_id or unquote(basic_id), unquote(basic_secret)
        if not client_id:
            raise errors.missing_parameter("client_id")
        registration = self.apps.get(client_id)
        if registration is None:
            raise errors.unknown_client(client_id, request.match_info["tenant"])
        if not secret:
            raise errors.missing_secret()
        if not hmac.compare_digest(secret, registration.client_secret):
            raise errors.invalid_secret(client_id)
        return registration

    @staticmethod
    def _seeded(upn: str) -> User:
        user = user_by_upn(upn)
        if user is None:
            raise KeyError(f"no sandbox user {upn!r}")
        return user


_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _correlation(request: web.Request) -> str | None:
    return request.headers.get("client-request-id")


