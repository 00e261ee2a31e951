"""The route class of every API router: how a route's call is made."""

from typing import Any

from fastapi.routing import APIRoute

from service.openapi import RATE_LIMITED
from service.ratelimit import Endpoint, RateLimits
from service.threads import WorkerThreads


def app_route_class(limits: RateLimits, threads: WorkerThreads) -> type[APIRoute]:
    class AppRoute(APIRoute):
        """A route whose sync endpoint runs in one of the worker's thread pools, in one
        hop, after SlowAPI has checked the caller's budget and the route's own limits."""

        def __init__(self, path: str, endpoint: Endpoint, **kwargs: Any) -> None:
            kwargs["openapi_extra"] = {**(kwargs.get("openapi_extra") or {}), RATE_LIMITED: True}
            super().__init__(path, threads.in_pool(limits.enforced(endpoint)), **kwargs)

    return AppRoute
