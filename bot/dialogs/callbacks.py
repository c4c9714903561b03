"""The browser side of our sign-in flows: `/oauth/{xero,dynamics}/start` and `/oauth/{...}/callback`.

Start: the card's link token -> a single-use provider state (10 minutes) -> redirect to the provider.
Callback: take the state (a second use, an expired or unknown one is refused), then, in a proactive
turn of the setup's conversation, check the setup still waits for this very link, redeem the code,
keep the sign-in pending and show the page with the one-time code. Every refusal ends on a clear page;
where the setup is known, the card says so too, with Try again. Nothing is stored from a refused flow.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.dialogs import pages
from bot.dialogs.flow import SetupFlow
from bot.dialogs.model import SIGNIN_PHASE, VERIFY_PHASE, Provider, SetupState
from bot.dialogs.oauth_state import MESSAGES, Binding, StateError, flow_message
from bot.errors import ConnectorError, OAuthFlowError
from bot.teams.turn import Turn

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_TITLES = {
    "invalid_state": "This sign-in link isn't valid",
    "expired_state": "This sign-in link has expired",
    "replayed_state": "This sign-in was already used",
    "link_replaced": "This sign-in link was replaced",
    "setup_gone": "This setup is no longer waiting for a sign-in",
    "access_denied": "Sign-in cancelled",
}
# Entra reports a declined consent as access_denied too (AADSTS65004), with the same meaning.
_DENIED = frozenset({"access_denied", "consent_required", "interaction_required"})


def _title(reason: str, provider: Provider) -> str:
    return _TITLES.get(reason, f"{provider.label} sign-in didn't work")


def _waiting_for(state: SetupState | None, binding: Binding) -> str | None:
    """None if the setup waits for a sign-in through exactly this link; else why not."""
    if state is None or state.setup_id != binding.setup_id:
        return "setup_gone"
    if state.owner_id != binding.user_id or state.tenant_id != binding.tenant_id:
        return "setup_gone"
    if state.phase not in (SIGNIN_PHASE[binding.provider], VERIFY_PHASE[binding.provider]):
        return "setup_gone"
    if state.link != binding.link:
        return "link_replaced"
    return None


class OAuthRoutes:
    def __init__(self, flow: SetupFlow) -> None:
        self._flow = flow
        self._kit = flow.kit

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/oauth/xero/start", self._start(Provider.XERO)),
            web.get("/oauth/xero/callback", self._callback(Provider.XERO)),
            web.get("/oauth/dynamics/start", self._start(Provider.DYNAMICS)),
            web.get("/oauth/dynamics/callback", self._callback(Provider.DYNAMICS)),
        ]

    def _start(self, provider: Provider) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.start(provider, request.query.get("link", ""))

        return handle

    def _callback(self, provider: Provider) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.callback(provider, {k: v for k, v in request.query.items()})

        return handle

    # -- start ---------------------------------------------------------------------------------------

    async def start(self, provider: Provider, link: str) -> web.StreamResponse:
        try:
            binding = await self._kit.states.open_link(link)
            if binding.provider is not provider:
                raise StateError("invalid_state")
            step = self._flow.xero if provider is Provider.XERO else self._flow.dynamics
            url = await step.authorize_url(binding)
        except StateError as exc:
            if exc.binding is not None and exc.reason == "expired_state":
                await self._tell_chat(exc.binding, exc.reason)
            return pages.error_page(_title(exc.reason, provider), flow_message(exc.reason, provider))
        except OAuthFlowError as exc:
            return pages.error_page(_title(exc.reason, provider), str(exc), status=502)
        return web.Response(
            status=302,
            headers={"Location": url, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    # -- callback ------------------------------------------------------------------------------------

    async def callback(self, provider: Provider, query: Mapping[str, str]) -> web.StreamResponse:
        try:
            binding, secret = await self._kit.states.take_flow(query.get("state", ""))
        except StateError as exc:
            if exc.binding is not None and exc.binding.provider is provider:
                await self._tell_chat(exc.binding, exc.reason)
            return pages.error_page(_title(exc.reason, provider), flow_message(exc.reason, provider))
        if binding.provider is not provider:
            return pages.error_page(_title("invalid_state", provider), MESSAGES["invalid_state"])
        error = query.get("error", "")
        if error:
            reason = "access_denied" if error in _DENIED else "provider_error"
            description = query.get("error_description", "")[:200]
            message = MESSAGES["access_denied"] if reason == "access_denied" else (
                f"{provider.label} reported an error ({error[:60]}). {description}".strip()
            )
            log.info("%s sign-in for setup %s ended with %s", provider.value, binding.setup_id, error[:60])
            await self._tell_chat(binding, reason, message)
            return pages.error_page(_title(reason, provider), message)
        code = query.get("code", "")
        if provider is Provider.XERO and not (0 < len(code) <= 2048 and code.isprintable()):
            await self._tell_chat(binding, "provider_error", "Xero sent no authorization code.")
            return pages.error_page(_title("provider_error", provider), "Xero sent no authorization code.")

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
                reason = refused or "setup_gone"
                return pages.error_page(_title(reason, provider), MESSAGES[reason])
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
                session.save(await self._kit.fail(turn, state, provider, str(exc)))
                return pages.error_page(_title(exc.reason, provider), str(exc))
            session.save(waiting)
            await self._kit.show(turn, waiting)
            return pages.code_page(provider.label, code, account)

    # -- telling the chat ----------------------------------------------------------------------------

    async def _tell_chat(self, binding: Binding, reason: str, message: str = "") -> None:
        """Put a refused sign-in on the setup's card (with Try again) if it still waits for that link.

        A reused callback is only reported: the first use may have worked, and a browser's reload
        must not undo it."""
        text = message or flow_message(reason, binding.provider)

        async def in_chat(turn: Turn) -> None:
            async with self._flow.sessions.open(turn.context) as session:
                state = session.state
                if _waiting_for(state, binding) is not None or state is None:
                    return
                if reason == "replayed_state":
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
