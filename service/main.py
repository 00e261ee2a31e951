"""App factory: `create_app(settings)`; `app` is what uvicorn serves."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from service import metrics, openapi
from service.config import Settings, get_settings
from service.cors import CorsMiddleware
from service.deps import IDENTIFY_CALLER, REQUIRE_SESSION
from service.exception_handlers import register_exception_handlers
from service.http import MAX_HEADER_BYTES
from service.logging import configure_logging, get_logger
from service.middleware import RequestContextMiddleware
from service.routes import account, auth, health, sessions, tasks
from service.runtime import Runtime

log = get_logger("service")
API_DESCRIPTION = """\
Users register, log in, and manage their own tasks with a short-lived JWT. Every token
names a server-side session, checked on every request: logout, "log out everywhere", a
password change and a detected refresh-token replay take effect on the very next request.

Send the access token from `/login` as `Authorization: Bearer <token>`. Every response is
JSON, errors included, and carries `X-Request-ID`. Rate limits answer 429 with
`Retry-After`; an unavailable PostgreSQL or Redis answers 503 with `Retry-After`, never a
pass.
"""


DOCS_ASSETS = "/docs/assets"


def operation_id(route: APIRoute) -> str:
    # The route function's name (`create_task`, `login`): FastAPI's default appends the
    # path and method, so a generated client's method names would change with any path.
    return route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, log_format=settings.log_format)
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.info("service_started", app_env=settings.app_env)
        if settings.uses_example_secret:
            log.warning(
                "example_jwt_secret",
                detail="JWT_SECRET is the public example value: anyone can sign tokens for "
                "this server. Set a random secret (production refuses to start without one).",
            )
        yield
        await runtime.close()
        metrics.process_exiting()
        log.info("service_stopped")

    # Swagger UI (/docs) and ReDoc (/redoc) with their scripts and styles served from
    # DOCS_ASSETS, not a CDN: the pages work offline and load nothing from another host.
    app = FastAPIOffline(
        title="Tasks service",
        version="1.0.0",
        summary="Accounts, revocable server-side sessions and per-user tasks.",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        responses=openapi.INTERNAL_ERROR,
        static_url=DOCS_ASSETS,
        generate_unique_id_function=operation_id,
        # Starlette's redirect would build its URL from the Host header: a path with a
        # trailing slash is a JSON 404 instead.
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    register_exception_handlers(app)
    # Inside the request context, so that preflight answers carry its headers too.
    app.add_middleware(CorsMiddleware, origins=settings.cors_origin_set)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=MAX_HEADER_BYTES,
        allowed_hosts=settings.allowed_host_set,
    )

    # The public routes, all of them. A token sent to one still keys the caller's budget
    # by user when its session is live.
    app.include_router(auth.build_router(runtime), dependencies=[IDENTIFY_CALLER])
    app.include_router(health.router)
    # Every other route needs a live session.
    for module in (account, sessions, tasks):
        app.include_router(module.build_router(runtime), dependencies=[REQUIRE_SESSION])
    openapi.install(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.main:app` builds the app on first access, so importing
    # create_app (tests, scripts) does not build one from the environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
