"""Step 3: the route wrapper. Every route of the API is an `EdgeRoute`. It reads the one
declaration on its endpoint (`declare`: public or not, which thread pool, which limits the
route adds to the budget) and calls the endpoint in one hop into that pool, where the rest
of the request happens in call order:

    step4_auth.admit      verify the token, spend the budget (the session is checked in
                          the same Redis round trip), 401 or 429
    the endpoint          service/routes -> service/services -> db/ and sessions/
    step5_budget.settle   give back a password guess that succeeded

Before the hop, on the event loop, the route refuses what it cannot take: a body that is
not sent as JSON (no Content-Type, or another media type: 415 naming the accepted ones;
`application/merge-patch+json` is accepted as well on PATCH, no other `+json` type) and a
query parameter given twice. Both are answered by the error step (step6_errors), which
admits the request first, like any malformed one.

An endpoint without a declaration is protected: it needs a live session. It asks for its
caller with a parameter annotated `service.deps.Caller`, which the wrapper fills once the
session is known to be live (FastAPI never sees it), and for services with the other
`Annotated` dependencies of service.deps.
"""

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from service.edge import step4_auth as auth
from service.edge import step5_budget as budget
from service.edge.call import Call

Endpoint = Callable[..., Any]
E = TypeVar("E", bound=Endpoint)
Pool = Literal["requests", "passwords"]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Declaration:
    """How a route is called: every option, in one place."""

    # Answered without a live session (a token, when sent, still keys the budget).
    public: bool = False
    # "passwords" for the routes that hash a password: a login storm queues there without
    # taking a thread that reads need.
    pool: Pool = "requests"
    # Limits the route adds to the budget, by name (service.limits.policy).
    limits: tuple[str, ...] = ()


DEFAULT = Declaration()
_DECLARATION = "__edge_declaration__"


def declare(
    *, public: bool = False, hashes_passwords: bool = False, limits: tuple[str, ...] = ()
) -> Callable[[E], E]:
    """Declare how the endpoint below is called (see Declaration)."""
    declaration = Declaration(public, "passwords" if hashes_passwords else "requests", limits)

    def mark(endpoint: E) -> E:
        setattr(endpoint, _DECLARATION, declaration)
        return endpoint

    return mark


def declaration_of(endpoint: Endpoint) -> Declaration:
    declaration: Declaration = getattr(endpoint, _DECLARATION, DEFAULT)
    return declaration


class _FromCall:
    """Marks a parameter the wrapper fills with the caller (service.deps.Caller)."""


FROM_CALL = _FromCall()


@dataclass(frozen=True)
class Pools:
    """The worker process's thread pools, each sized by its own setting: few request
    threads contend less for the GIL, and the routes that hash a password have their own.
    Executors of our own rather than AnyIO's worker threads with a capacity limiter: the
    hop measured cheaper (docs/performance.md, "The thread hop")."""

    requests: ThreadPoolExecutor
    passwords: ThreadPoolExecutor
    # Metrics: never in a pool that requests wait for (readiness has threads of its own).
    operations: ThreadPoolExecutor

    @classmethod
    def build(cls, *, requests: int, passwords: int) -> "Pools":
        return cls(
            ThreadPoolExecutor(requests, thread_name_prefix="request"),
            ThreadPoolExecutor(passwords, thread_name_prefix="password"),
            ThreadPoolExecutor(1, thread_name_prefix="operations"),
        )

    async def run(self, pool: Pool, call: Callable[[], T]) -> T:
        """Run `call` in a thread of `pool`, in a copy of the caller's context (the request
        id bound for logging goes along)."""
        return await _run_in(self.passwords if pool == "passwords" else self.requests, call)

    async def run_operation(self, call: Callable[[], T]) -> T:
        """Run `call` in the operations thread (the metrics' rendering)."""
        return await _run_in(self.operations, call)

    def shutdown(self) -> None:
        for pool in (self.requests, self.passwords, self.operations):
            pool.shutdown(wait=True)


async def _run_in(pool: ThreadPoolExecutor, call: Callable[[], T]) -> T:
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(pool, context.run, call)


_REQUEST = "edge_request"


class EdgeRoute(APIRoute):
    """A route whose endpoint runs as its declaration says (see the module's docstring)."""

    def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
        self.declaration = declaration_of(endpoint)
        self._body_name: str | None = None
        super().__init__(path, self._wrap(endpoint), **kwargs)
        self._body_name = self.body_field.name if self.body_field else None

    @functools.cached_property
    def query_names(self) -> frozenset[str]:
        """The query parameters the route takes (those of its query model, if any)."""
        names: set[str] = set()
        for field in self.dependant.query_params:
            model = field.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                names.update(info.alias or name for name, info in model.model_fields.items())
            else:
                names.add(field.alias)
        return frozenset(names)

    @functools.cached_property
    def media_types(self) -> tuple[str, ...]:
        """The media types the route's body may be sent as; none when it takes no body."""
        if self.body_field is None:
            return ()
        return (JSON, MERGE_PATCH) if "PATCH" in (self.methods or ()) else (JSON,)

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        media_types, queried = self.media_types, bool(self.dependant.query_params)
        if not media_types and not queried:
            return handler

        async def refuse_what_the_route_cannot_take_then_handle(request: Request) -> Response:
            if media_types and media_type(request) not in media_types:
                # Before FastAPI reads the body as whatever it is; admitted like a 422.
                raise UnsupportedMediaType(media_types)
            # FastAPI keeps the last of a repeated parameter; each of ours takes one value.
            if queried and request.scope["query_string"]:
                names = [name for name, _ in request.query_params.multi_items()]
                if len(names) != len(set(names)):
                    raise RequestValidationError(self._repeated_or_unknown(names))
            response: Response = await handler(request)
            return response

        return refuse_what_the_route_cannot_take_then_handle

    def _repeated_or_unknown(self, names: list[str]) -> list[dict[str, Any]]:
        errors = []
        for name in dict.fromkeys(names):
            if name not in self.query_names:
                message = unknown_parameter(name, self.query_names)
                errors.append({"type": "extra_forbidden", "loc": ("query", name), "msg": message})
            elif names.count(name) > 1:
                message = f"Query parameter {name!r} given more than once; it takes one value"
                errors.append(
                    {"type": "repeated_parameter", "loc": ("query", name), "msg": message}
                )
        return errors

    def _wrap(self, endpoint: Endpoint) -> Endpoint:
        declaration = self.declaration
        signature = inspect.signature(endpoint)
        parameters = list(signature.parameters.values())
        callers = [p.name for p in parameters if _from_call(p.annotation)]
        request_name = next((p.name for p in parameters if p.annotation is Request), None)
        visible = [p for p in parameters if p.name not in callers]
        if request_name is None:
            visible.append(
                inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            )

        def in_thread(request: Request, call: Call, arguments: dict[str, Any]) -> Any:
            auth.admit(request, call, limits=declaration.limits, public=declaration.public)
            for name in callers:
                arguments[name] = call.principal
            result = endpoint(**arguments)
            if declaration.limits:
                budget.settle(request, declaration.limits)
            return result

        async def call_endpoint(**arguments: Any) -> Any:
            request: Request = arguments[request_name] if request_name else arguments.pop(_REQUEST)
            call = Call.of(request)
            if self._body_name is not None:
                call.body = arguments.get(self._body_name)
            pools: Pools = request.app.state.runtime.pools
            return await pools.run(
                declaration.pool, functools.partial(in_thread, request, call, arguments)
            )

        functools.update_wrapper(call_endpoint, endpoint)
        call_endpoint.__signature__ = signature.replace(parameters=visible)  # type: ignore[attr-defined]
        return call_endpoint


JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


class UnsupportedMediaType(Exception):
    """The request's body is not of a media type the route takes (415). Raised before the
    route is admitted: the error step admits it first (its 401 or 429 comes sooner)."""

    def __init__(self, accepted: tuple[str, ...]) -> None:
        self.accepted = accepted
        names = " or ".join(accepted)
        super().__init__(f"Unsupported media type: send the body as {names}")
        self.detail = str(self)


def media_type(request: Request) -> str | None:
    """The request's media type, lower-case and without parameters (`charset=utf-8`)."""
    value = request.headers.get("content-type")
    return value.partition(";")[0].strip().lower() if value is not None else None


def unknown_parameter(name: str, known: frozenset[str]) -> str:
    return f"Unknown query parameter {name!r}; known: {', '.join(sorted(known))}"


def _from_call(annotation: Any) -> bool:
    return get_origin(annotation) is Annotated and any(
        isinstance(extra, _FromCall) for extra in get_args(annotation)[1:]
    )
