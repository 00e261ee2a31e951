"""The long-lived objects of one worker process, built from Settings when the app starts
(its lifespan) and closed when it stops."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import requests

from db.engine import Database, make_engine
from db.schema import SchemaCheck
from service.config import OidcProviderSettings, Settings
from service.edge.admission import Admission
from service.edge.call import Call
from service.edge.circuits import Circuit, CircuitOpen, database_circuit, redis_circuit
from service.edge.route import Pools
from service.health import Dependency, Readiness
from service.limits.policy import RateLimits
from service.mail import Mailer, Outbox, SmtpSettings
from service.services.accounts import AccountService
from service.services.factors import SecondFactors
from service.services.oidc import OidcService
from service.services.oidc_provider import OidcProvider, ProviderError
from service.services.passwords import PasswordService
from service.services.second_factor import SecondFactorService
from service.services.sessions import SessionService
from service.services.tasks import TaskService
from service.services.verification import EmailVerificationService
from sessions import redis_client
from sessions.devices import DeviceTokens
from sessions.known_clients import KnownClients
from sessions.mfa_tokens import MfaTokens
from sessions.oidc import OidcFlows
from sessions.passwords import PasswordHasher
from sessions.resets import ResetTokens
from sessions.store import SessionStore
from sessions.tokens import TokenCodec
from sessions.totp import SecretBox
from sessions.verifications import VerificationTokens


@dataclass
class Runtime:
    settings: Settings
    database: Database
    redis: redis_client.Client
    sessions: SessionStore
    tokens: TokenCodec
    passwords: PasswordHasher
    limits: RateLimits
    admission: Admission
    pools: Pools
    outbox: Outbox
    accounts: AccountService
    session_service: SessionService
    password_service: PasswordService
    second_factor: SecondFactorService
    tasks: TaskService
    verification: EmailVerificationService
    oidc: OidcService
    redis_circuit: Circuit
    database_circuit: Circuit
    readiness: Readiness

    @classmethod
    def build(cls, settings: Settings) -> "Runtime":
        database_breaker, redis_breaker = database_circuit(), redis_circuit()
        database = Database(
            make_engine(
                settings.database_url,
                pool_size=settings.database_pool_size,
                statement_timeout_ms=settings.db_statement_timeout_ms,
            ),
            guard=database_breaker.guard,
        )
        # One pool for the session store, the rate limiter and the reset tokens.
        client = redis_client.connect(
            settings.redis_url,
            max_connections=settings.worker_threads,
            socket_timeout=settings.redis_socket_timeout,
        )
        sessions = SessionStore(
            client,
            session_ttl_seconds=settings.session_ttl_seconds,
            idle_timeout_seconds=settings.session_idle_timeout_seconds,
            refresh_grace_seconds=settings.refresh_grace_seconds,
            max_sessions_per_user=settings.max_sessions_per_user,
            guard=redis_breaker.guard,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_ms=settings.redis_wait_timeout_ms,
        )
        tokens = TokenCodec(
            secret=settings.jwt_secret.get_secret_value(),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl_seconds=settings.access_token_ttl_seconds,
        )
        passwords = PasswordHasher(concurrency=settings.password_hash_concurrency)
        pools = Pools.build(requests=settings.thread_pool_size, passwords=settings.password_threads)
        factors = SecondFactors(
            database=database,
            box=SecretBox(settings.mfa_keys),
            tokens=MfaTokens(
                client, ttl_seconds=settings.mfa_token_ttl_seconds, guard=redis_breaker.guard
            ),
            issuer=settings.mfa_issuer,
            enrolment_ttl_seconds=settings.mfa_enrolment_ttl_seconds,
        )
        outbox = Outbox()
        mailer = Mailer(_smtp_settings(settings), log_instead=settings.app_env != "production")
        verification = EmailVerificationService(
            database=database,
            tokens=VerificationTokens(
                client,
                ttl_seconds=settings.email_verification_ttl_seconds,
                guard=redis_breaker.guard,
            ),
            mailer=mailer,
            outbox=outbox,
            url=settings.email_verification_url,
        )
        accounts = AccountService(
            database=database,
            sessions=sessions,
            tokens=tokens,
            passwords=passwords,
            devices=DeviceTokens(
                secret=settings.jwt_secret.get_secret_value(),
                ttl_seconds=settings.device_token_ttl_seconds,
            ),
            known_clients=KnownClients(
                client, ttl_seconds=settings.device_token_ttl_seconds, guard=redis_breaker.guard
            ),
            factors=factors,
            verification=verification,
            require_verified_email=settings.require_verified_email,
        )
        limits = RateLimits(
            client=client,
            guard=redis_breaker.guard,
            subject_of=Call.of,
            budget=settings.rate_limit,
            revoke=settings.revoke_rate_limit,
            register=settings.register_rate_limit,
            login=settings.login_rate_limit,
            login_account=settings.login_account_rate_limit,
            login_device=settings.login_device_rate_limit,
            password_reset=settings.password_reset_rate_limit,
            mfa=settings.mfa_rate_limit,
            email_verification=settings.email_verification_rate_limit,
        )

        def ping_redis() -> None:
            with redis_breaker.guard():
                client.ping()

        return cls(
            settings=settings,
            database=database,
            redis=client,
            sessions=sessions,
            tokens=tokens,
            passwords=passwords,
            limits=limits,
            admission=Admission(
                tokens=tokens, sessions=sessions, limits=limits, guard=redis_breaker.guard
            ),
            pools=pools,
            outbox=outbox,
            accounts=accounts,
            session_service=SessionService(sessions=sessions),
            password_service=PasswordService(
                database=database,
                accounts=accounts,
                sessions=sessions,
                passwords=passwords,
                resets=ResetTokens(
                    client,
                    ttl_seconds=settings.password_reset_ttl_seconds,
                    guard=redis_breaker.guard,
                ),
                mailer=mailer,
                outbox=outbox,
                reset_url=settings.password_reset_url,
            ),
            second_factor=SecondFactorService(accounts=accounts, factors=factors),
            tasks=TaskService(database=database),
            verification=verification,
            oidc=OidcService(
                database=database,
                accounts=accounts,
                flows=OidcFlows(client, guard=redis_breaker.guard),
                providers=_oidc_providers(settings),
                public_base_url=settings.public_base_url,
                return_url=settings.oidc_return_url,
                require_verified_email=settings.require_verified_email,
                require_code_challenge=settings.oidc_require_code_challenge,
            ),
            redis_circuit=redis_breaker,
            database_circuit=database_breaker,
            readiness=Readiness(
                {
                    # Reachable and migrated: a schema behind the code fails every request.
                    "postgresql": Dependency(database_breaker, SchemaCheck(database).ping),
                    "redis": Dependency(redis_breaker, ping_redis),
                }
            ),
        )

    def close(self) -> None:
        self.readiness.close()
        self.pools.shutdown()
        self.outbox.close()
        self.database.dispose()
        self.redis.close()


def _oidc_providers(settings: Settings) -> dict[str, OidcProvider]:
    return {
        provider.name: OidcProvider(
            provider,
            redirect_uri=f"{settings.public_base_url}/oidc/{provider.name}/callback",
            timeout_seconds=settings.oidc_timeout_seconds,
            guard=_provider_guard(provider, settings.oidc_timeout_seconds),
        )
        for provider in settings.oidc_provider_settings
    }


def _provider_guard(
    provider: OidcProviderSettings, timeout_seconds: float
) -> Callable[[], AbstractContextManager[None]]:
    """A breaker per provider: one that is down or hung costs a request thread its timeout
    a couple of times, then answers provider_error at once until a trial call, one
    timeout later, finds it back."""

    def gone(error: BaseException) -> bool:
        return isinstance(error, requests.ConnectionError | requests.Timeout)

    circuit = Circuit(f"oidc:{provider.name}", counts=gone, reset_timeout=timeout_seconds)

    @contextmanager
    def guard() -> Iterator[None]:
        try:
            with circuit.guard():
                yield
        except CircuitOpen:
            raise ProviderError("circuit open: the provider failed just now") from None

    return guard


def _smtp_settings(settings: Settings) -> SmtpSettings:
    return SmtpSettings(
        host=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value(),
        tls=settings.smtp_tls,
        sender=settings.mail_from,
    )
