"""Settings read from the environment (and `.env` in development), validated at start."""

from functools import lru_cache
from string import Formatter
from typing import Literal

from limits import parse
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator

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
    password_reset_ttl_seconds: int = Field(default=1800, ge=1, le=7 * 86_400)
    # Where the reset mail's link points, e.g. https://app.example.com/reset?token={token}
    password_reset_url: str = ""
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
    )
    @classmethod
    def parsable_rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as error:
            raise ValueError(f"not a rate limit like '100/minute': {value!r}") from error
        return value

    @field_validator("password_reset_url")
    @classmethod
    def url_with_a_token_slot(cls, url: str) -> str:
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
                "PASSWORD_RESET_URL must contain {token} where the token goes, and no other "
                "{...} field (write a literal brace as {{ or }})"
            )
        return url

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
