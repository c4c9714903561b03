"""The Bot Framework adapter, built from our Settings (the only place that knows botbuilder's config names)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import ActivityTypes

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
        )
    else:
        config = _BotFrameworkConfig(**base)
    if settings.anonymous_bot:
        log.warning(
            "MICROSOFT_APP_ID is not set: /api/messages accepts UNAUTHENTICATED requests (anonymous mode). "
            "Use this only with local clients such as the Agents Playground; never deploy it."
        )
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
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
