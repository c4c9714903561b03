"""The Bot Framework adapter, built from our Settings (the only place that knows botbuilder's config names)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import requests
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import AuthenticateRequestResult, ClaimsIdentity, ConnectorFactory
from botframework.connector.auth._built_in_bot_framework_authentication import (
    _BuiltinBotFrameworkAuthentication,
)
from botframework.connector.auth.user_token_client import UserTokenClient

from bot.config import Settings
from bot.teams import connector_speedups
from bot.teams.connector_speedups import AiohttpSender, ClientCache, ShallowCopyTurnContext, use_sender

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _BotFrameworkConfig:
    """The attribute names botbuilder reads. Optional endpoints are only present when set: an empty
    string there would switch anonymous mode off (botbuilder passes "" rather than None)."""

    APP_ID: str
    APP_PASSWORD: str
    APP_TYPE: str
    APP_TENANTID: str


@dataclass(frozen=True)
class _BotFrameworkConfigWithMetadata(_BotFrameworkConfig):
    TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL: str
    TO_BOT_FROM_CHANNEL_TOKEN_ISSUER: str
    # Emulator- and skill-issued tokens are checked against these keys too: left unset, botbuilder
    # would fetch `None` for them (a 503 for a forged token instead of a 401).
    TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL: str


class _Authentication(ConfigurationBotFrameworkAuthentication):  # type: ignore[misc]
    """botbuilder's token validation, with every way a bad token can fail answered 401.

    botbuilder raises PermissionError (401) for most bad tokens, but lets others escape as a 500: an
    unknown key id (IndexError), no `iss` claim (KeyError), a header with three parts (AttributeError),
    a disallowed algorithm such as `none` or HS256, or a key not endorsed for the channel (bare
    Exception). Those are all "not authenticated". Not reaching the key endpoint is our problem, not the
    caller's: 503, so the channel retries.
    """

    def __init__(self, config: _BotFrameworkConfig) -> None:
        super().__init__(config)
        self.sender = AiohttpSender()
        self.connectors: ClientCache[ConnectorClient] = ClientCache()
        self.user_token_clients: ClientCache[UserTokenClient] = ClientCache()

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        result = await self._validate(activity, auth_header)
        if result.connector_factory is not None:
            result.connector_factory = _ReusedConnectors(
                self, result.connector_factory, result.claims_identity
            )
        return result

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        # Proactive sends come through here.
        return _ReusedConnectors(self, super().create_connector_factory(claims_identity), claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        # Holds the app's credentials and an msrest client, nothing of the turn: one per app id.
        key = (_app_id(claims_identity),)

        async def build() -> UserTokenClient:
            client: UserTokenClient = await ConfigurationBotFrameworkAuthentication.create_user_token_client(
                self, claims_identity
            )
            return client

        return await self.user_token_clients.get(key, build)

    async def close(self) -> None:
        await self.sender.close()

    async def _validate(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        try:
            return await super().authenticate_request(activity, auth_header)
        except PermissionError:
            raise
        except requests.RequestException as exc:
            log.error("Bot Framework signing keys unavailable: %s", type(exc).__name__)
            raise web.HTTPServiceUnavailable(text="token signing keys unavailable") from None
        except Exception as exc:
            # The exception text can quote the token's claims; its type says enough.
            log.info("Refused a Bot Framework token that does not validate (%s)", type(exc).__name__)
            raise PermissionError("the token does not validate") from None


def _app_id(claims_identity: ClaimsIdentity) -> str:
    return str(_BuiltinBotFrameworkAuthentication.get_app_id(claims_identity) or "")


class _ReusedConnectors(ConnectorFactory):  # type: ignore[misc]
    """botbuilder's connector factory, but a client per (app id, service URL, audience) is built once.

    botbuilder's factory makes credentials and a ConnectorClient for every activity; the client keeps
    nothing of the turn (credentials, base URL, serializers), and the credentials cache their token.
    Built clients send through the shared aiohttp sender instead of `requests` in a thread."""

    def __init__(
        self, auth: _Authentication, inner: ConnectorFactory, claims_identity: ClaimsIdentity
    ) -> None:
        self._auth = auth
        self._inner = inner
        self._app_id = _app_id(claims_identity)

    async def create(self, service_url: str, audience: str | None = None) -> ConnectorClient:
        async def build() -> ConnectorClient:
            client = await self._inner.create(service_url, audience)
            return use_sender(client, self._auth.sender)

        return await self._auth.connectors.get((self._app_id, service_url, audience or ""), build)


class _Adapter(CloudAdapter):  # type: ignore[misc]
    """CloudAdapter with botbuilder's turn context replaced by one that copies replies shallowly."""

    def _create_turn_context(
        self,
        activity: Activity,
        claims_identity: ClaimsIdentity,
        oauth_scope: str,
        connector_client: ConnectorClient,
        user_token_client: UserTokenClient,
        logic: Callable[[TurnContext], Awaitable[None]],
        connector_factory: ConnectorFactory,
    ) -> TurnContext:
        # botbuilder 4.17's CloudAdapterBase._create_turn_context, with our context class.
        context = ShallowCopyTurnContext(self, activity)
        context.turn_state[self.BOT_IDENTITY_KEY] = claims_identity
        context.turn_state[self.BOT_CONNECTOR_CLIENT_KEY] = connector_client
        context.turn_state[self.USER_TOKEN_CLIENT_KEY] = user_token_client
        context.turn_state[self.BOT_CALLBACK_HANDLER_KEY] = logic
        context.turn_state[self.CONNECTOR_FACTORY_KEY] = connector_factory
        context.turn_state[self.BOT_OAUTH_SCOPE_KEY] = oauth_scope
        return context


def build_adapter(settings: Settings) -> CloudAdapter:
    base = {
        "APP_ID": settings.microsoft_app_id,
        "APP_PASSWORD": settings.microsoft_app_password.get_secret_value(),
        "APP_TYPE": settings.microsoft_app_type.value,
        "APP_TENANTID": settings.microsoft_app_tenant_id,
    }
    config: _BotFrameworkConfig
    if settings.bot_openid_metadata_url:
        config = _BotFrameworkConfigWithMetadata(
            **base,
            TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.bot_openid_metadata_url,
            TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.bot_token_issuer,
            TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=settings.bot_openid_metadata_url,
        )
    else:
        config = _BotFrameworkConfig(**base)
    if settings.anonymous_bot:
        log.warning(
            "MICROSOFT_APP_ID is not set: /api/messages accepts UNAUTHENTICATED requests (anonymous mode). "
            "Use this only with local clients such as the Agents Playground; never deploy it."
        )
    connector_speedups.install()
    adapter = _Adapter(_Authentication(config))
    adapter.on_turn_error = _on_turn_error
    return adapter


async def close_adapter(adapter: CloudAdapter) -> None:
    """Closes the HTTP session the adapter's connector clients share (call once turns have stopped)."""
    auth = adapter.bot_framework_authentication
    if isinstance(auth, _Authentication):
        await auth.close()


async def _on_turn_error(context: TurnContext, error: Exception) -> None:
    # The user sees a short apology; the log keeps the cause (without activity contents).
    log.error("Unhandled error in a turn (%s): %s", context.activity.type, error, exc_info=error)
    if context.activity.type == ActivityTypes.message:
        try:
            await context.send_activity("Sorry, something went wrong on my side. Please try again.")
        except Exception:
            log.warning("Could not tell the user about the error")
