"""The product's settings: one frozen, validated object, read once from the environment and `.env`.

`load_settings()` is called by the composition root (`app.py`) and the worker; everything else gets the
object passed in. A bad value raises `ConfigError` with one line naming the variable; the entry points
print that line and exit with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
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


# The real providers' hosts (and their national clouds): a sandbox deployment must never reach them,
# or real tokens would be kept under the sandbox's development key (issue 14).
_REAL_PROVIDER_DOMAINS = (
    "xero.com",
    "microsoftonline.com",
    "microsoftonline.us",
    "microsoftonline.de",
    "chinacloudapi.cn",
    "partner.microsoftonline.cn",
    "microsoft.com",
    "windows.net",
    "dynamics.com",
    "dynamics.cn",
    "microsoftdynamics.us",
    "microsoftdynamics.de",
    "appsplatform.us",
)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_REDIS_SCHEMES = frozenset({"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"})
ANONYMOUS_OPT_IN = "DANGEROUSLY_ALLOW_ANONYMOUS"


def is_loopback_host(host: str | None) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (a name that merely starts with "localhost." is not)."""
    if not host:
        return False
    host = host.strip("[]").lower()
    return host in _LOOPBACK_HOSTS or (host.startswith("127.") and host.replace(".", "").isdigit())


def is_real_provider_host(host: str | None) -> bool:
    host = (host or "").lower().rstrip(".")
    return any(host == d or host.endswith("." + d) for d in _REAL_PROVIDER_DOMAINS)


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
    # Our solution's AppSource listing, offered on the setup card's solution step when set.
    solution_appsource_url: str = ""
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

    # redis://, rediss:// or unix:// for one Redis server; redis+cluster://host:port (rediss+cluster://)
    # for a Redis Cluster, seeded by that node (bot.storage.redis_base).
    redis_url: str = ""
    # The Redis store's pool, per process: at most this many calls in flight; more wait for a free
    # connection up to REDIS_POOL_TIMEOUT_SECONDS, then fail with a StoreError.
    redis_max_connections: int = Field(default=50, ge=1, le=10_000)
    redis_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # Due-set shards of the schedule (bot.storage.redis_keys): spread over a cluster's nodes. Fixed for
    # the life of the data: entries scheduled under another count would not be found.
    redis_due_shards: int = Field(default=16, ge=1, le=1024)
    data_dir: Path = Path(".data")
    token_encryption_keys: Annotated[tuple[str, ...], NoDecode] = ()
    sandbox: bool | None = None
    # Outside sandbox mode the bot refuses to start without MICROSOFT_APP_ID: with no app id anyone who
    # reaches the port could pose as any Teams user. This opt-in (named like teams.py's
    # `dangerously_allow_unauthenticated_requests`) allows it for local use only: loopback, loopback
    # service URLs.
    dangerously_allow_anonymous: bool = False

    # Limits and tuning.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    # Reverse proxies in front of the bot that append to X-Forwarded-For (0: none; the header is then
    # ignored, so a client cannot pick its own address to dodge the sign-in routes' rate limit).
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)
    run_scheduler: bool = True
    scheduler_poll_seconds: float = Field(default=1.0, gt=0)
    run_lease_seconds: float = Field(default=120.0, gt=1)
    # Prometheus metrics (bot.metrics): GET /metrics on the bot's port; a worker (python -m
    # bot.worker) serves /metrics and /readyz on WORKER_METRICS_PORT when set (0: no listener),
    # on WORKER_METRICS_HOST (loopback unless opened up for a scraper on another machine).
    metrics_enabled: bool = True
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)
    worker_metrics_host: str = "127.0.0.1"
    # The sign-in keeper (bot.sync.keepalive): refreshes sign-ins that runs do not use (paused or rarely
    # running connections) before the providers drop them (Xero: 60 days unused, Entra: 90 days inactive).
    signin_keeper_enabled: bool = True
    signin_keeper_interval_seconds: float = Field(default=3600.0, gt=0)
    xero_refresh_idle_days: float = Field(default=30.0, gt=0, lt=60)
    dynamics_refresh_idle_days: float = Field(default=30.0, gt=0, lt=90)
    signin_warn_days: float = Field(default=7.0, ge=0, lt=60)
    signin_keeper_batch: int = Field(default=200, ge=1)
    signin_keeper_concurrency: int = Field(default=4, ge=1)

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
        if value and urlsplit(value).scheme not in _REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss://, unix:// or redis+cluster://")
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
        if self.sandbox_mode:
            # Credentials in sandbox mode may only reach the sandbox: real tokens would otherwise be
            # kept under the development key stored next to the data (issue 14).
            urls = (_XERO_URLS if self.xero_client_id else ()) + (_MICROSOFT_URLS if self.dynamics_client_id else ())
            for name in urls:
                if is_real_provider_host(urlsplit(getattr(self, name)).hostname):
                    raise ValueError(
                        f"{name.upper()}: sandbox mode must not reach the real service "
                        f"({urlsplit(getattr(self, name)).hostname}); point it at the sandbox or turn SANDBOX off"
                    )
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

    def check_serving(self) -> None:
        """Raise ConfigError (one line) if these settings must not serve the Bot Framework endpoint.

        Outside sandbox mode an app id is required: without one, /api/messages accepts unsigned
        activities and anyone who reaches the port could pose as any Teams user. Checked by the
        entry points that serve it (`app.py`, `create_app`), not by every use of the settings."""
        if not self.sandbox_mode and not self.microsoft_app_id and not self.dangerously_allow_anonymous:
            raise ConfigError(
                "MICROSOFT_APP_ID: required outside sandbox mode (without it anyone could pose as a Teams "
                f"user); for local testing only, set {ANONYMOUS_OPT_IN}=true"
            )

    @property
    def bind_host(self) -> str:
        """Where to listen: an anonymous bot only on loopback, whatever HOST says."""
        if self.anonymous_bot and not is_loopback_host(self.host):
            return "127.0.0.1"
        return self.host

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_base_url).hostname or "localhost"

    def redirect_uri(self, provider: str) -> str:
        return f"{self.public_base_url}/oauth/{provider}/callback"


_XERO_URLS = ("xero_login_url", "xero_identity_url", "xero_api_url")
_MICROSOFT_URLS = ("entra_authority_host", "dataverse_discovery_url")


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


@contextmanager
def config_errors_exit() -> Iterator[None]:
    """For the entry points (`app.py`, `python -m bot.worker`, `bot.rotate_keys`, the dev server): a
    ConfigError inside becomes its one line on stderr and exit code 2."""
    try:
        yield
    except ConfigError as exc:
        sys.stderr.write(f"configuration error: {exc}\n")
        raise SystemExit(2) from None
