"""App factory: `create_app(settings)`; `app` is what uvicorn serves."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service import metrics
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

    app = FastAPI(
        title="Tasks service",
        version="1.0.0",
        summary="Accounts, revocable server-side sessions and per-user tasks.",
        lifespan=lifespan,
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
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.main:app` builds the app on first access, so importing
    # create_app (tests, scripts) does not build one from the environment.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
