"""The Bot Framework adapter, built from our Settings (the only place that knows botbuilder's config names)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import requests
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import AuthenticateRequestResult

from bot.config import Settings

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

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
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
    adapter = CloudAdapter(_Authentication(config))
    adapter.on_turn_error = _on_turn_error
    return adapter


async def _on_turn_error(context: TurnContext, error: Exception) -> None:
    # The user sees a short apology; the log keeps the cause (without activity contents).
    log.error("Unhandled error in a turn (%s): %s", context.activity.type, error, exc_info=error)
    if context.activity.type == ActivityTypes.message:
        try:
            await context.send_activity("Sorry, something went wrong on my side. Please try again.")
        except Exception:
            log.warning("Could not tell the user about the error")
