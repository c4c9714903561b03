"""The product's settings: one frozen, validated object, read once from the environment and `.env`.

`load_settings()` is called by the composition root (`app.py`) and the worker; everything else gets the
object passed in. A bad value raises `ConfigError` with one line naming the variable; the entry points
print that line and exit with status 2.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError


class AppType(StrEnum):
    MULTI_TENANT = "MultiTenant"
    SINGLE_TENANT = "SingleTenant"
    USER_ASSIGNED_MSI = "UserAssignedMSI"


def _strip_slash(url: str) -> str:
    return url.rstrip("/")


def _check_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return _strip_slash(value)


class Settings(BaseSettings):
    """Every setting of the product. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        case_sensitive=False,
    )

    port: int = Field(default=3978, ge=1, le=65535)
    host: str = "0.0.0.0"  # noqa: S104 - a bot endpoint must be reachable by the channel
    public_base_url: str = "http://localhost:3978"
    log_level: str = "INFO"

    microsoft_app_id: str = ""
    microsoft_app_password: SecretStr = SecretStr("")
    microsoft_app_tenant_id: str = ""
    microsoft_app_type: AppType = AppType.MULTI_TENANT
    # Where inbound Bot Framework tokens are checked (defaults to botbuilder's own: the real Bot Framework).
    bot_openid_metadata_url: str = ""
    bot_token_issuer: str = "https://api.botframework.com"

    xero_client_id: str = ""
    xero_client_secret: SecretStr = SecretStr("")
    dynamics_client_id: str = ""
    dynamics_client_secret: SecretStr = SecretStr("")

    # Base URLs of the providers: the real services by default, the sandbox in development and tests.
    xero_login_url: str = "https://login.xero.com"
    xero_identity_url: str = "https://identity.xero.com"
    xero_api_url: str = "https://api.xero.com"
    entra_authority_host: str = "https://login.microsoftonline.com"
    dataverse_discovery_url: str = "https://globaldisco.crm.dynamics.com"
    # A CA bundle to trust in addition to the system's (the sandbox's local CA).
    ca_bundle: Path | None = None

    redis_url: str = ""
    data_dir: Path = Path(".data")
    token_encryption_keys: Annotated[tuple[str, ...], NoDecode] = ()
    sandbox: bool | None = None

    # Limits and tuning.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    run_scheduler: bool = True
    scheduler_poll_seconds: float = Field(default=1.0, gt=0)
    run_lease_seconds: float = Field(default=120.0, gt=1)

    @field_validator("token_encryption_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator(
        "public_base_url",
        "xero_login_url",
        "xero_identity_url",
        "xero_api_url",
        "entra_authority_host",
        "dataverse_discovery_url",
    )
    @classmethod
    def _urls(cls, value: str) -> str:
        return _check_url("URL", value)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in {"redis", "rediss", "unix"}:
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        upper = value.upper()
        if upper not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return upper

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if (
            self.microsoft_app_id
            and not self.microsoft_app_password.get_secret_value()
            and self.microsoft_app_type != AppType.USER_ASSIGNED_MSI
        ):
            raise ValueError("MICROSOFT_APP_PASSWORD: required when MICROSOFT_APP_ID is set")
        if self.microsoft_app_type == AppType.SINGLE_TENANT and not self.microsoft_app_tenant_id:
            raise ValueError("MICROSOFT_APP_TENANT_ID: required when MICROSOFT_APP_TYPE is SingleTenant")
        if not self.sandbox_mode and not self.token_encryption_keys:
            raise ValueError("TOKEN_ENCRYPTION_KEYS: required outside sandbox mode")
        if self.xero_client_id and not self.xero_client_secret.get_secret_value():
            raise ValueError("XERO_CLIENT_SECRET: required when XERO_CLIENT_ID is set")
        if self.dynamics_client_id and not self.dynamics_client_secret.get_secret_value():
            raise ValueError("DYNAMICS_CLIENT_SECRET: required when DYNAMICS_CLIENT_ID is set")
        return self

    @property
    def sandbox_mode(self) -> bool:
        """Sandbox unless said otherwise; implied when no provider credentials are configured."""
        if self.sandbox is not None:
            return self.sandbox
        return not (self.xero_client_id or self.dynamics_client_id)

    @property
    def anonymous_bot(self) -> bool:
        """No app id: the Bot Framework endpoint accepts unauthenticated requests (local clients only)."""
        return not self.microsoft_app_id

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_base_url).hostname or "localhost"

    def redirect_uri(self, provider: str) -> str:
        return f"{self.public_base_url}/oauth/{provider}/callback"


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first.get("loc", ()))
    message = str(first.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    if not loc and ":" in message:
        return message
    return f"{loc.upper() or 'settings'}: {message}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once. Raises ConfigError with one line naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
