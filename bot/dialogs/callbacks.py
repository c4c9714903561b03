"""The browser side of our sign-in flows: `/oauth/{xero,dynamics}/start` and `/oauth/{...}/callback`.

Start: the card's link token -> a single-use provider state (10 minutes) -> redirect to the provider.
Callback: take the state (a second use, an expired or unknown one is refused), then, in a proactive
turn of the setup's conversation, check the setup still waits for this very link, redeem the code,
keep the sign-in pending and show the page with the one-time code. Every refusal ends on a clear page;
where the setup is known, the card says so too, with Try again. Nothing is stored from a refused flow.

Issue 14 (the browser side is reachable by anyone who sees a setup card's link, or a callback URL):
- Start sets a cookie (HttpOnly, SameSite=Lax so the provider's top-level redirect back carries it,
  https://developer.mozilla.org/en-US/docs/Web/HTTP/Cookies#samesite_attribute ; Secure on https,
  Path limited to this provider's routes, 10 minutes); the flow keeps its hash and
  the callback takes the flow only with it. A second browser opening the same link while a sign-in
  through it is under way is refused, and a callback arriving while an earlier one waits for its code
  does not replace it.
- Both routes are rate limited per client address (the store's counters, so every process shares
  them), and each link may be opened `MAX_STARTS_PER_LINK` times: a flood of GETs cannot grow the store.
- Every refusal travels as a `SigninFailure` and is put into words here, at the edge, by
  `bot.dialogs.wording` (the page and the chat say the same).
- A provider's `error` is mapped to our own sentence; its `error_description` (anyone can put
  anything there, e.g. a phishing link) goes only to the log, scrubbed. Codes: RFC 6749 4.1.2.1
  (https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1); Entra says the description "is not
  intended to be end-user friendly"
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow#error-response).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.dialogs import pages, wording
from bot.dialogs.failures import SigninFailure, provider_failure
from bot.dialogs.flow import SetupFlow
from bot.dialogs.graph import waits_for_signin
from bot.dialogs.model import Provider, SetupState
from bot.dialogs.oauth_state import Binding, StateError, browser_hash, new_token, valid_token
from bot.errors import ConnectorError, OAuthFlowError
from bot.teams.turn import Turn

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Requests per client address per minute on the sign-in routes (start and callback together).
SIGNIN_REQUESTS_PER_MINUTE = 60
COOKIE_PREFIX = "xdc_signin_"
# A refused start that is about load, not about the link, says so in its status.
_START_STATUS = {SigninFailure.TOO_MANY: 429, SigninFailure.SIGNIN_BUSY: 409}
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S*", re.IGNORECASE)
_LONG_TOKEN = re.compile(r"[A-Za-z0-9_\-.~+/=]{24,}")


def scrub(text: str, limit: int = 200) -> str:
    """Provider text fit for the log: one line, printable, no links, no token-like strings, short."""
    flat = "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4])
    flat = _URL.sub("<url>", " ".join(flat.split()))
    return _LONG_TOKEN.sub("<redacted>", flat)[:limit]


def _waiting_for(state: SetupState | None, binding: Binding) -> SigninFailure | None:
    """None if the setup waits for a sign-in through exactly this link; else why not."""
    if state is None or state.setup_id != binding.setup_id:
        return SigninFailure.SETUP_GONE
    if state.owner_id != binding.user_id or state.tenant_id != binding.tenant_id:
        return SigninFailure.SETUP_GONE
    if not waits_for_signin(state.phase, binding.provider):
        return SigninFailure.SETUP_GONE
    if state.link != binding.link:
        return SigninFailure.LINK_REPLACED
    return None


def _error_page(reason: SigninFailure, provider: Provider, text: str = "", *, status: int = 400) -> web.Response:
    return pages.error_page(wording.title(reason, provider), text or wording.message(reason, provider), status=status)


class OAuthRoutes:
    def __init__(self, flow: SetupFlow, *, requests_per_minute: int = SIGNIN_REQUESTS_PER_MINUTE) -> None:
        self._flow = flow
        self._kit = flow.kit
        self._per_minute = requests_per_minute
        self._secure_cookie = flow.kit.deps.settings.public_base_url.startswith("https://")
        self._proxy_hops = flow.kit.deps.settings.trusted_proxy_hops

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/oauth/xero/start", self._start(Provider.XERO)),
            web.get("/oauth/xero/callback", self._callback(Provider.XERO)),
            web.get("/oauth/dynamics/start", self._start(Provider.DYNAMICS)),
            web.get("/oauth/dynamics/callback", self._callback(Provider.DYNAMICS)),
        ]

    def _start(self, provider: Provider) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if await self._over_limit(request):
                return _too_many()
            cookie = request.cookies.get(COOKIE_PREFIX + provider.value)
            return await self.start(provider, request.query.get("link", ""), cookie)

        return handle

    def _callback(self, provider: Provider) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            if await self._over_limit(request):
                return _too_many()
            cookie = request.cookies.get(COOKIE_PREFIX + provider.value)
            return await self.callback(provider, {k: v for k, v in request.query.items()}, cookie)

        return handle

    async def _over_limit(self, request: web.Request) -> bool:
        """Per client address and minute, counted in the store (shared by every process)."""
        window = int(time.time() // 60)
        address = client_address(request, self._proxy_hops)
        count = await self._kit.deps.store.incr_counter(f"oauth-ip:{address}:{window}", 120.0)
        if count > self._per_minute:
            if count == self._per_minute + 1:
                log.warning("sign-in routes: client %s is over %s requests a minute", address, self._per_minute)
            return True
        return False

    # -- start ---------------------------------------------------------------------------------------

    async def start(self, provider: Provider, link: str, cookie: str | None = None) -> web.StreamResponse:
        # The browser keeps its cookie across openings of the link (it may open it twice).
        cookie = cookie if cookie is not None and valid_token(cookie) else new_token()
        try:
            binding = await self._kit.states.open_link(link)
            if binding.provider is not provider:
                raise StateError(SigninFailure.INVALID_STATE)
            browser = browser_hash(cookie)
            await self._kit.states.claim_link(binding, browser)
            step = self._flow.xero if provider is Provider.XERO else self._flow.dynamics
            url = await step.authorize_url(binding.model_copy(update={"browser": browser}))
        except StateError as exc:
            if exc.binding is not None and exc.reason is SigninFailure.EXPIRED_STATE:
                await self._tell_chat(exc.binding, exc.reason)
            return _error_page(exc.reason, provider, status=_START_STATUS.get(exc.reason, 400))
        except OAuthFlowError as exc:
            return _error_page(SigninFailure.of(exc.reason), provider, wording.flow_error_words(exc), status=502)
        response = web.Response(
            status=302,
            headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )
        response.set_cookie(
            COOKIE_PREFIX + provider.value,
            cookie,
            max_age=int(self._kit.states.ttl_seconds),
            path=f"/oauth/{provider.value}/",
            httponly=True,
            samesite="Lax",
            secure=self._secure_cookie,
        )
        return response

    # -- callback ------------------------------------------------------------------------------------

    async def callback(
        self, provider: Provider, query: Mapping[str, str], cookie: str | None = None
    ) -> web.StreamResponse:
        try:
            binding, secret = await self._kit.states.take_flow(query.get("state", ""), browser_hash(cookie))
        except StateError as exc:
            if exc.binding is not None and exc.binding.provider is provider:
                await self._tell_chat(exc.binding, exc.reason)
            return _error_page(exc.reason, provider)
        if binding.provider is not provider:
            return _error_page(SigninFailure.INVALID_STATE, provider)
        error = query.get("error", "")
        if error:
            reason = provider_failure(error)
            message = wording.provider_error_message(error, provider)
            log.info(
                "%s sign-in for setup %s ended with error %r: %r",
                provider.value,
                binding.setup_id,
                scrub(error, 60),
                scrub(query.get("error_description", "")),
            )
            await self._tell_chat(binding, reason, message)
            return _error_page(reason, provider, message)
        code = query.get("code", "")
        if provider is Provider.XERO and not (0 < len(code) <= 2048 and code.isprintable()):
            no_code = "Xero sent no authorization code."
            await self._tell_chat(binding, SigninFailure.PROVIDER_ERROR, no_code)
            return _error_page(SigninFailure.PROVIDER_ERROR, provider, no_code)

        async def in_chat(turn: Turn) -> web.StreamResponse:
            return await self._complete(turn, provider, binding, secret, query)

        try:
            return await self._flow.in_conversation(binding.reference, in_chat)
        except Exception:
            log.exception("the %s callback of setup %s failed", provider.value, binding.setup_id)
            return pages.error_page(
                "Something went wrong on our side",
                "The sign-in could not be finished. Go back to Teams and choose Try again on the setup card.",
                status=500,
            )

    async def _complete(
        self,
        turn: Turn,
        provider: Provider,
        binding: Binding,
        secret: dict[str, object],
        query: Mapping[str, str],
    ) -> web.StreamResponse:
        async with self._flow.sessions.open(turn.context) as session:
            state = session.state
            refused = _waiting_for(state, binding)
            if refused is not None or state is None:
                return _error_page(refused or SigninFailure.SETUP_GONE, provider)
            if state.verification is not None:
                # An earlier sign-in through this link waits for its code: a second one must not
                # replace it (the creator could be talked into typing the second one's code).
                log.warning("setup %s: a second %s callback while one waits for its code", state.setup_id, provider.value)
                return _error_page(SigninFailure.CODE_PENDING, provider, status=409)
            try:
                if provider is Provider.XERO:
                    waiting, code = await self._flow.xero.on_callback(state, query.get("code", ""), dict(secret))
                    account = ""
                    signed_in: dict[str, object] = {}
                else:
                    waiting, maybe_code, signed_in = await self._flow.dynamics.on_callback(
                        state, dict(query), dict(secret)
                    )
                    account_info = signed_in.get("account")
                    account = str(account_info.get("username", "")) if isinstance(account_info, dict) else ""
                    if maybe_code is None:
                        # The account is the Teams user's own: no code needed.
                        await self._flow.apply(turn, session, await self._flow.dynamics.on_verified(turn, waiting, dict(signed_in)))
                        return pages.done_page(provider.label, account)
                    code = maybe_code
            except OAuthFlowError as exc:
                words = wording.flow_error_words(exc)
                session.save(await self._kit.fail(turn, state, provider, words))
                return _error_page(SigninFailure.of(exc.reason), provider, words)
            session.save(waiting)
            await self._kit.show(turn, waiting)
            return pages.code_page(provider.label, code, account)

    # -- telling the chat ----------------------------------------------------------------------------

    async def _tell_chat(self, binding: Binding, reason: SigninFailure, message: str = "") -> None:
        """Put a refused sign-in on the setup's card (with Try again) if it still waits for that link.

        A reused callback is only reported: the first use may have worked, and a browser's reload
        must not undo it."""
        text = message or wording.message(reason, binding.provider)

        async def in_chat(turn: Turn) -> None:
            async with self._flow.sessions.open(turn.context) as session:
                state = session.state
                if _waiting_for(state, binding) is not None or state is None:
                    return
                if reason is SigninFailure.REPLAYED_STATE:
                    await turn.send_text(
                        f"⚠️ A {binding.provider.label} sign-in response for this setup was used a second "
                        "time; I refused it and nothing changed."
                    )
                    return
                session.save(await self._kit.fail(turn, state, binding.provider, text))

        try:
            await self._flow.in_conversation(binding.reference, in_chat)
        except ConnectorError:
            log.warning("could not tell the chat about a refused %s sign-in", binding.provider.value)
        except Exception:
            log.exception("could not tell the chat about a refused %s sign-in", binding.provider.value)


def client_address(request: web.BaseRequest, proxy_hops: int) -> str:
    """The client's address: the peer's, or behind `proxy_hops` trusted proxies the entry they added to
    X-Forwarded-For (each appends the address it received from; entries further left are the client's
    own say and are not trusted). Without trusted proxies the header is ignored."""
    address = request.remote or "unknown"
    if proxy_hops:
        forwarded = [a.strip() for a in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
        forwarded = [a for a in forwarded if a]
        if len(forwarded) >= proxy_hops:
            address = forwarded[-proxy_hops]
    return address[:64]


def _too_many() -> web.Response:
    return pages.error_page(
        "Too many sign-in attempts",
        "This computer opened too many sign-in pages in a short time. Nothing was changed. Wait a minute, "
        "then use the button on the setup card in Teams.",
        status=429,
        headers={"Retry-After": "60"},
    )
