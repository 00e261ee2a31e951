"""The route: every route of the API is an `EdgeRoute`. It reads the one declaration on its
endpoint (`declare`: public or not, which thread pool, which rate limits it spends) and
hands the request to its worker thread in one hop, where admission (service.edge.admission)
lets it in and the endpoint runs:

    on the event loop   the request becomes an ApiRequest (FastAPI's custom Request
                        class); what the route cannot take is refused (below); FastAPI
                        reads and validates the body, path, query and headers
    one hop             admission, then the endpoint -> service/services -> db/, sessions/

A request refused as malformed (a body not sent as JSON: 415; a query parameter given
twice, invalid input or a body that is not JSON: 422) makes the same hop to be admitted,
so its budget is spent and a protected route's caller without a live session gets the 401
first, never the validation details; then the refusal is raised for the error handlers
(service.edge.errors) to render.

An endpoint without a declaration is protected: it needs a live session. Every endpoint
takes its request, as `caller: Caller` (protected) or `request: ApiRequest` (public), and
its services as the other `Annotated` dependencies of service.deps.
"""

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, NoReturn, TypeVar

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from service.edge.call import ApiRequest, runtime_of

Endpoint = Callable[..., Any]
Pool = Literal["requests", "passwords"]
E = TypeVar("E", bound=Endpoint)
T = TypeVar("T")
JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"


@dataclass(frozen=True, slots=True)
class Declaration:
    """How a route is called: every option, in one place."""

    # Answered without a live session (a token, when sent, still keys the budget).
    public: bool = False
    # "passwords" for the routes that hash a password: a login storm queues there without
    # taking a thread that reads need.
    pool: Pool = "requests"
    # The set of rate limits the route spends (service.limits.policy).
    limits: str = "request"


_DECLARATION = "__edge_declaration__"


def declare(
    *, public: bool = False, hashes_passwords: bool = False, limits: str = "request"
) -> Callable[[E], E]:
    """Declare how the endpoint below is called (see Declaration)."""
    declaration = Declaration(public, "passwords" if hashes_passwords else "requests", limits)

    def mark(endpoint: E) -> E:
        setattr(endpoint, _DECLARATION, declaration)
        return endpoint

    return mark


def declaration_of(endpoint: Endpoint) -> Declaration:
    declaration: Declaration = getattr(endpoint, _DECLARATION, Declaration())
    return declaration


@dataclass(frozen=True)
class Pools:
    """Each sized by its own setting: few request threads contend less for the GIL, and the
    routes that hash a password have their own, so a login storm queues there without
    taking a thread that reads need. Executors of our own rather than AnyIO's worker
    threads behind a capacity limiter: the hop measured cheaper (docs/performance.md)."""

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


class EdgeRoute(APIRoute):
    """A route whose endpoint runs as its declaration says (see the module's docstring)."""

    def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
        self.declaration = declaration_of(endpoint)
        super().__init__(path, self._wrap(endpoint), **kwargs)

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

        async def admit_and_handle(request: Request) -> Response:
            request = ApiRequest(request.scope, request.receive)
            try:
                self._refuse_what_it_cannot_take(request)
                response: Response = await handler(request)
            except Exception as error:
                if not _malformed(error):
                    raise
                await self._in_thread(request, functools.partial(_reraise, error), True)
                raise
            return response

        return admit_and_handle

    def _refuse_what_it_cannot_take(self, request: Request) -> None:
        if self.media_types and media_type(request) not in self.media_types:
            # Before FastAPI reads the body as whatever it is.
            raise UnsupportedMediaType(self.media_types)
        # FastAPI keeps the last of a repeated parameter; each of ours takes one value.
        if request.scope["query_string"] and self.dependant.query_params:
            names = [name for name, _ in request.query_params.multi_items()]
            if len(names) != len(set(names)):
                raise RequestValidationError(self._repeated_or_unknown(names))

    async def _in_thread(self, request: Request, work: Callable[[], T], malformed: bool) -> T:
        """The request's one hop: admission, then `work`, in a worker thread."""
        runtime, declaration = runtime_of(request), self.declaration

        def admitted() -> T:
            runtime.admission.admit(
                request,
                limits=declaration.limits,
                public=declaration.public,
                malformed=malformed,
            )
            return work()

        return await runtime.pools.run(declaration.pool, admitted)

    def _wrap(self, endpoint: Endpoint) -> Endpoint:
        request_name = _request_parameter(endpoint)

        @functools.wraps(endpoint)  # FastAPI reads the endpoint's own signature
        async def call_endpoint(**arguments: Any) -> Any:
            request = arguments[request_name]
            return await self._in_thread(request, functools.partial(endpoint, **arguments), False)

        return call_endpoint

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


class UnsupportedMediaType(Exception):
    """The request's body is not of a media type the route takes (415)."""

    def __init__(self, accepted: tuple[str, ...]) -> None:
        self.accepted = accepted
        names = " or ".join(accepted)
        super().__init__(f"Unsupported media type: send the body as {names}")
        self.detail = str(self)


def _malformed(error: Exception) -> bool:
    """Refused as malformed input: none of these ever comes from an endpoint. FastAPI
    answers a body it could not parse (not UTF-8 JSON, nested too deep) with a 400."""
    if isinstance(error, HTTPException):
        return error.status_code == 400
    return isinstance(error, RequestValidationError | UnsupportedMediaType)


def _reraise(error: Exception) -> NoReturn:
    raise error


def _request_parameter(endpoint: Endpoint) -> str:
    for parameter in inspect.signature(endpoint).parameters.values():
        annotation = parameter.annotation
        if isinstance(annotation, type) and issubclass(annotation, ApiRequest):
            return parameter.name
    raise TypeError(
        f"{endpoint.__qualname__} takes no ApiRequest: declare `caller: Caller` "
        "(service.deps) or, on a public route, `request: ApiRequest`"
    )


def media_type(request: Request) -> str | None:
    """The request's media type, lower-case and without parameters (`charset=utf-8`)."""
    value = request.headers.get("content-type")
    return value.partition(";")[0].strip().lower() if value is not None else None


def unknown_parameter(name: str, known: frozenset[str]) -> str:
    return f"Unknown query parameter {name!r}; known: {', '.join(sorted(known))}"
