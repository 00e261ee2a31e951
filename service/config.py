"""Settings read from the environment (and `.env` in development), validated at start."""

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from string import Formatter
from typing import Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from limits import parse
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from db.settings import DatabaseSettings
from sessions import redis_client
from sessions.totp import derived_key, valid_key

EXAMPLE_JWT_SECRET = "change-me-to-a-long-random-secret-of-32-bytes-or-more"  # noqa: S105 (the value refused in production)
MIN_JWT_SECRET_BYTES = 32
EXAMPLE_JWT_WARNING = (
    "JWT_SECRET is the public example value: anyone can sign tokens for this server. Set a "
    "random secret (see README, 'Run without Docker'); production refuses to start without one."
)


class Settings(DatabaseSettings):
    """Every setting of the service; the database's come from db.settings, which Alembic
    reads as well."""

    app_env: Literal["development", "test", "production"] = "development"
    # One node (redis://), a Sentinel service (redis+sentinel://) or a Cluster
    # (redis+cluster://): sessions/redis_client.py.
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Replicas that must acknowledge a revocation (WAIT) before it is answered; 0 for one
    # node. No acknowledgement within the timeout: 503, the revocation is not claimed.
    redis_wait_replicas: int = Field(default=0, ge=0, le=16)
    redis_wait_timeout_ms: int = Field(default=500, ge=1, le=10_000)
    jwt_secret: SecretStr = SecretStr(EXAMPLE_JWT_SECRET)
    jwt_issuer: str = "tasks-service"
    jwt_audience: str = "tasks-api"
    access_token_ttl_seconds: int = Field(default=900, ge=1, le=86_400)
    session_ttl_seconds: int = Field(default=7 * 86_400, ge=1)
    session_idle_timeout_seconds: int = Field(default=86_400, ge=1)
    rate_limit: str = "100/minute"
    # Logout, logout everywhere and ending a session: per session, instead of the budget.
    revoke_rate_limit: str = "30/minute"
    login_rate_limit: str = "10/minute"
    register_rate_limit: str = "20/hour"
    # Password guesses per account, from every client together (distributed guessing),
    # except from clients with a valid device token of the account or that signed in to
    # it before.
    login_account_rate_limit: str = "50/hour"
    # Password guesses per device, for logins that present a valid device token.
    login_device_rate_limit: str = "5/15minutes"
    # How long a device token (answered by every successful login) stays valid, and a
    # client address an account signed in from stays known.
    device_token_ttl_seconds: int = Field(default=90 * 86_400, ge=60, le=400 * 86_400)
    # A refresh token just rotated away still gets the same new pair for this long.
    refresh_grace_seconds: float = Field(default=10, ge=0, le=300)
    # A login beyond this ends the user's least recently used session.
    max_sessions_per_user: int = Field(default=10, ge=1, le=1000)
    password_reset_rate_limit: str = "5/hour"  # noqa: S105 (a rate, not a password)
    # Second-factor codes checked per account, from every client together.
    mfa_rate_limit: str = "10/15minutes"
    # Comma-separated Fernet keys sealing TOTP secrets: the first seals, every one opens
    # (rotation). Required in production; elsewhere derived from JWT_SECRET when unset.
    mfa_encryption_key: SecretStr | None = None
    # The issuer an authenticator app shows next to the account.
    mfa_issuer: str = Field(default="Tasks service", min_length=1, max_length=100)
    # How long the mfa_token of a login waiting for its code lives.
    mfa_token_ttl_seconds: int = Field(default=300, ge=1, le=3600)
    # How long an enrolment (POST /me/mfa/totp) waits for the code that confirms it.
    mfa_enrolment_ttl_seconds: int = Field(default=600, ge=1, le=86400)
    password_reset_ttl_seconds: int = Field(default=1800, ge=1, le=7 * 86_400)
    # Where the reset mail's link points, e.g. https://app.example.com/reset?token={token}
    password_reset_url: str = ""
    # Verified email addresses: the token a verification mail carries lives this long;
    # the mail's link, e.g. https://app.example.com/verify?token={token}.
    email_verification_ttl_seconds: int = Field(default=86_400, ge=1, le=30 * 86_400)
    email_verification_url: str = ""
    # POST /email/verify/resend, per client IP and per address.
    email_verification_rate_limit: str = "5/hour"
    # A correct password for an account whose address is not verified starts no session.
    require_verified_email: bool = False
    # Sign-in with OpenID Connect providers: their names, comma-separated; each one's
    # OIDC_<NAME>_ISSUER, _CLIENT_ID, _CLIENT_SECRET and _SCOPES (OidcVariables, below).
    oidc_providers: str = ""
    oidc_provider_variables: dict[str, str] = Field(default_factory=dict, repr=False)
    # The service's public base (https://api.example.com): the redirect URI registered at
    # each provider is <PUBLIC_BASE_URL>/oidc/<name>/callback. Never the request's Host.
    public_base_url: str = ""
    # The front-end page the browser lands on after a provider's callback.
    oidc_return_url: str = ""
    # Every HTTP call to a provider (discovery, keys, the code's exchange) gives up then.
    oidc_timeout_seconds: float = Field(default=5, gt=0, le=60)
    # A sign-in must begin with the front end's code_challenge, so that its login code is
    # traded only by the front end that began it (a forwarded return URL signs nobody in).
    oidc_require_code_challenge: bool = False
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65_535)
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    mail_from: str = "Tasks service <no-reply@localhost>"
    trusted_proxies: str = ""
    # Per worker process; the container runs one worker per CPU, so one hash per core.
    password_hash_concurrency: int = Field(default=1, ge=1, le=64)
    # Threads per worker for the routes that do not hash passwords. Few threads contend
    # less for the GIL (docs/performance.md); raise it when the databases are far away:
    # threads ~ requests/s per worker x seconds each one waits.
    thread_pool_size: int = Field(default=2, ge=1, le=1000)
    # Default: one connection per request thread and per password thread.
    db_pool_size: int | None = Field(default=None, ge=1, le=1000)
    db_statement_timeout_ms: int = Field(default=5000, ge=100)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A request's head (request line and headers) must arrive within this long of the
    # connection's opening or of the previous response (service/edge/protocol.py); the
    # proxy's client_header_timeout is the same 10 s.
    request_head_timeout_seconds: float = Field(default=10, gt=0, le=300)
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"
    # Bearer token for GET /metrics; without one, /metrics is not served (404).
    metrics_token: SecretStr | None = None
    # Comma-separated origins (https://app.example.com) that get CORS answers; none: no CORS.
    cors_origins: str = ""
    # Comma-separated host names the Host header may name (*.example.com: its subdomains);
    # empty: any (the proxy in front checks it, or nothing needs it).
    allowed_hosts: str = ""

    @field_validator("cors_origins")
    @classmethod
    def explicit_origins(cls, value: str) -> str:
        for origin in _items(value):
            scheme, _, rest = origin.partition("://")
            if origin == "*" or scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError(
                    f"CORS_ORIGINS lists origins like https://app.example.com, never '*' "
                    f"or a path: {origin!r}"
                )
        return value

    @field_validator("redis_url")
    @classmethod
    def known_redis_topology(cls, url: str) -> str:
        redis_client.parse(url)
        return url

    @property
    def redis_socket_timeout(self) -> float:
        """Long enough for a WAIT to answer within its own timeout."""
        return max(redis_client.SOCKET_TIMEOUT_SECONDS, self.redis_wait_timeout_ms / 1000 + 0.5)

    @property
    def cors_origin_set(self) -> frozenset[str]:
        return frozenset(_items(self.cors_origins))

    @property
    def allowed_host_set(self) -> frozenset[str]:
        return frozenset(host.lower() for host in _items(self.allowed_hosts))

    @field_validator(
        "rate_limit",
        "revoke_rate_limit",
        "login_rate_limit",
        "register_rate_limit",
        "login_account_rate_limit",
        "login_device_rate_limit",
        "password_reset_rate_limit",
        "mfa_rate_limit",
        "email_verification_rate_limit",
    )
    @classmethod
    def parsable_rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise ValueError(f"not a rate limit like '100/minute': {value!r}") from error
        return value

    @field_validator("password_reset_url", "email_verification_url")
    @classmethod
    def url_with_a_token_slot(cls, url: str, info: ValidationInfo) -> str:
        # Formatted for every reset mail (str.format): a field other than {token}, or a
        # stray brace, would make every mail fail instead of the start.
        if not url:
            return url
        try:
            fields = [part[1:] for part in Formatter().parse(url) if part[1] is not None]
        except ValueError:
            fields = [("", None, None)]
        if not fields or any(field != ("token", "", None) for field in fields):
            raise ValueError(
                f"{str(info.field_name).upper()} must contain {{token}} where the token goes, "
                "and no other {...} field (write a literal brace as {{ or }})"
            )
        return url

    @field_validator("public_base_url", "oidc_return_url")
    @classmethod
    def absolute_http_url(cls, url: str, info: ValidationInfo) -> str:
        # Every redirect the service answers is built from these, never from the Host header.
        if not url:
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            raise ValueError("must be an absolute http(s) URL without a #fragment")
        if info.field_name == "public_base_url":
            if parts.query:
                raise ValueError("must be a base URL, without a query")
            return url.rstrip("/")
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            OidcVariables(settings_cls),
            file_secret_settings,
        )

    @property
    def oidc_provider_settings(self) -> tuple["OidcProviderSettings", ...]:
        """Each provider of OIDC_PROVIDERS, from its OIDC_<NAME>_* variables (checked at
        start by `complete_oidc_providers`)."""
        found = []
        variables = {key.upper(): value for key, value in self.oidc_provider_variables.items()}
        for name in _items(self.oidc_providers):
            prefix = f"OIDC_{name.upper()}_"
            found.append(
                OidcProviderSettings(
                    name=name.lower(),
                    issuer=variables.get(prefix + "ISSUER", "").rstrip("/"),
                    client_id=variables.get(prefix + "CLIENT_ID", ""),
                    client_secret=SecretStr(variables.get(prefix + "CLIENT_SECRET", "")),
                    scopes=variables.get(prefix + "SCOPES", "").strip() or DEFAULT_OIDC_SCOPES,
                )
            )
        return tuple(found)

    @model_validator(mode="after")
    def complete_oidc_providers(self) -> "Settings":
        # Named by variable, never by value (a client secret must not reach a log).
        providers = self.oidc_provider_settings
        if not providers:
            return self
        names = [provider.name for provider in providers]
        for name in names:
            if not OIDC_PROVIDER_NAME.fullmatch(name):
                raise ValueError(
                    "OIDC_PROVIDERS lists names of 1 to 32 lower-case letters, digits or _, "
                    "starting with a letter"
                )
        if len(set(names)) != len(names):
            raise ValueError("OIDC_PROVIDERS names a provider twice")
        for required in ("PUBLIC_BASE_URL", "OIDC_RETURN_URL"):
            if not getattr(self, required.lower()):
                raise ValueError(f"{required} must be set when OIDC_PROVIDERS names a provider")
        for provider in providers:
            prefix = f"OIDC_{provider.name.upper()}_"
            issuer = urlsplit(provider.issuer)
            if issuer.scheme not in ("http", "https") or not issuer.netloc:
                raise ValueError(f"{prefix}ISSUER must be the provider's https:// issuer URL")
            if self.app_env == "production" and issuer.scheme != "https":
                raise ValueError(f"{prefix}ISSUER must be an https:// URL in production")
            if issuer.query or issuer.fragment:
                raise ValueError(f"{prefix}ISSUER must have no query and no #fragment")
            if not provider.client_id:
                raise ValueError(f"{prefix}CLIENT_ID must be set")
            if not provider.client_secret.get_secret_value():
                raise ValueError(f"{prefix}CLIENT_SECRET must be set")
            if "openid" not in provider.scopes.split():
                raise ValueError(f"{prefix}SCOPES must include openid")
        return self

    @field_validator("log_level")
    @classmethod
    def known_log_level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @property
    def password_threads(self) -> int:
        """Routes that hash a password in flight at once, per worker: twice the hashing
        cap, so one does its Redis and SQL work while another hashes. The rest wait on
        the event loop, not in a thread that other requests need."""
        return 2 * self.password_hash_concurrency

    @property
    def worker_threads(self) -> int:
        """Every thread of one worker process that may hold a connection: the request
        threads, one for each password route in flight, the readiness ping's (health
        checks) and the outbox's (mail)."""
        return self.thread_pool_size + self.password_threads + 2

    @property
    def database_pool_size(self) -> int:
        return self.db_pool_size if self.db_pool_size is not None else self.worker_threads

    @model_validator(mode="after")
    def a_connection_for_every_thread(self) -> "Settings":
        if self.database_pool_size < self.worker_threads:
            raise ValueError(
                f"DB_POOL_SIZE must be at least THREAD_POOL_SIZE + 2 x PASSWORD_HASH_CONCURRENCY "
                f"+ 2 ({self.worker_threads}): a thread waiting for a connection stalls its request"
            )
        return self

    @property
    def uses_example_secret(self) -> bool:
        return self.jwt_secret.get_secret_value() == EXAMPLE_JWT_SECRET

    @model_validator(mode="after")
    def strong_secret_in_production(self) -> "Settings":
        if self.app_env == "production":
            if self.uses_example_secret:
                raise ValueError("JWT_SECRET is the example value; set a random secret")
            if len(self.jwt_secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
                raise ValueError(f"JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes")
        return self

    @field_validator("mfa_encryption_key", mode="before")
    @classmethod
    def empty_is_unset(cls, value: object) -> object:
        # An empty variable (a secret left blank) means no key: derived, or refused in
        # production.
        return None if value == "" else value

    @field_validator("mfa_encryption_key")
    @classmethod
    def fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        keys = _items(value.get_secret_value())
        if not keys or not all(valid_key(key) for key in keys):
            # Never quotes a key.
            raise ValueError(
                "MFA_ENCRYPTION_KEY is a comma-separated list of Fernet keys (32 random bytes "
                "in URL-safe base64 each; see docs/operations.md, 'Second factor')"
            )
        return value

    @property
    def mfa_keys(self) -> list[str]:
        """The keys that seal TOTP secrets, the sealing one first. Without
        MFA_ENCRYPTION_KEY (development, test): one derived from JWT_SECRET."""
        if self.mfa_encryption_key is not None:
            return _items(self.mfa_encryption_key.get_secret_value())
        return [derived_key(self.jwt_secret.get_secret_value())]

    @model_validator(mode="after")
    def sealing_key_in_production(self) -> "Settings":
        if self.app_env == "production" and self.mfa_encryption_key is None:
            raise ValueError(
                "MFA_ENCRYPTION_KEY must be set in production (it seals the TOTP secrets)"
            )
        return self


DEFAULT_OIDC_SCOPES = "openid email profile"
OIDC_PROVIDER_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}", re.ASCII)
# OIDC_ variables that are settings of their own, not a provider's.
_OIDC_SETTINGS = frozenset({"OIDC_PROVIDERS", "OIDC_RETURN_URL", "OIDC_TIMEOUT_SECONDS"})


@dataclass(frozen=True)
class OidcProviderSettings:
    """One OpenID Connect provider the service signs users in with."""

    name: str
    # Its metadata is read from <issuer>/.well-known/openid-configuration.
    issuer: str
    client_id: str
    client_secret: SecretStr
    scopes: str


class OidcVariables(PydanticBaseSettingsSource):
    """The OIDC_<NAME>_* variables, whose names depend on a value (OIDC_PROVIDERS), so no
    field can declare them: read from the environment, then `.env`, like every setting."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, str] = {}
        env_file = self.config.get("env_file")
        if isinstance(env_file, str) and Path(env_file).is_file():
            found |= {k.upper(): v for k, v in dotenv_values(env_file).items() if v is not None}
        found |= {key.upper(): value for key, value in os.environ.items()}
        variables = {
            key: value
            for key, value in found.items()
            if key.startswith("OIDC_") and key not in _OIDC_SETTINGS
        }
        return {"oidc_provider_variables": variables} if variables else {}


def settings_problems(error: ValidationError) -> str:
    """What is wrong with the settings, in one line: each problem names its variable, and
    never its value (hide_input_in_errors; our messages never quote one)."""
    problems = []
    for problem in error.errors():
        variable = ".".join(str(part) for part in problem["loc"]).upper() or "settings"
        problems.append(f"{variable}: {problem['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def _items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
