"""App factory: `create_app(settings)` wires the request path together; `app` is what
uvicorn serves. The path itself, part by part, is service/edge (docs/design.md)."""

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import ValidationError

from service import docs_pages, metrics
from service.config import EXAMPLE_JWT_WARNING, Settings, get_settings, settings_problems
from service.edge import errors, middleware, openapi
from service.edge.route import EdgeRoute
from service.logging import configure_logging, get_logger
from service.routes import account, auth, health, mfa, oidc, sessions, tasks, verification
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


def operation_id(route: APIRoute) -> str:
    # The route function's name (`create_task`, `login`): FastAPI's default appends the
    # path and method, so a generated client's method names would change with any path.
    return route.name


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Built here, not with the app: building an app object opens no pool and installs
        # no process-wide hook.
        runtime = Runtime.build(settings)
        for context in iter_route_contexts(app.routes):
            route = context.original_route
            if isinstance(route, EdgeRoute) and route.declaration.limits not in runtime.limits.sets:
                raise ValueError(f"{route.path}: no rate limits named {route.declaration.limits!r}")
        app.state.runtime = runtime
        log.info("service_started", app_env=settings.app_env)
        yield
        runtime.close()
        metrics.process_exiting()
        log.info("service_stopped")

    return lifespan


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(level=settings.log_level, log_format=settings.log_format)
    if settings.uses_example_secret:
        # The first line the server logs (uvicorn builds the app before it says anything),
        # and /health/ready says it too.
        log.error("example_jwt_secret", detail=EXAMPLE_JWT_WARNING)
    app = FastAPI(
        title="Tasks service",
        version="1.0.0",
        summary="Accounts, revocable server-side sessions and per-user tasks.",
        description=API_DESCRIPTION,
        lifespan=_lifespan(settings),
        responses=openapi.INTERNAL_ERROR,
        generate_unique_id_function=operation_id,
        # Served by docs_pages, after the API's routes.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # Starlette's redirect would build its URL from the Host header: a path with a
        # trailing slash is a JSON 404 instead.
        redirect_slashes=False,
    )
    errors.install(app)
    stack = middleware.stack(
        max_body_bytes=settings.max_body_bytes,
        allowed_hosts=settings.allowed_host_set,
        cors_origins=settings.cors_origin_set,
    )
    # Starlette runs the middleware added last first: add them innermost first.
    for part, options in reversed(stack):
        app.add_middleware(part, **options)
    # Every route of these routers is an EdgeRoute: protected unless declared public.
    # FastAPI tries the routers in this order for every request: the busiest first (a
    # task read matched after three other routers cost 7 % more, docs/performance.md).
    for router in (tasks.router, sessions.router, account.router, auth.router, mfa.router):
        app.include_router(router)
    for router in (verification.router, oidc.router):
        app.include_router(router)
    # Liveness, readiness and metrics: answered on the event loop, outside the budget.
    app.include_router(health.router)
    openapi.install(app)
    docs_pages.install(app)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.main:app` builds the app on first access, so importing
    # create_app (tests, scripts) does not build one from the environment.
    if name == "app":
        try:
            settings = get_settings()
        except ValidationError as error:
            # One line naming each bad variable, not pydantic's traceback through uvicorn's
            # importer; exit status 2 like the container's start (scripts/startup.py).
            print(f"error: invalid settings: {settings_problems(error)}", file=sys.stderr)
            raise SystemExit(2) from None
        application = create_app(settings)
        globals()["app"] = application
        return application
    raise AttributeError(name)
