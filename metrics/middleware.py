"""CORS for the SDK's public routes.

The SDK posts ``text/plain`` JSON (a simple request) but preflights ``PUT /sessions`` and
``PUT /tracks``, and must read the body of every answer, errors included, to get its token
or ``error_code``. It sends no credentials, so ``*`` is enough and safe; dashboard routes
(cookie-authenticated) get no CORS headers at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

PREFIX = "/metrics/v1/"
SDK_ROUTES = {
    "initialize", "sessions", "events/get-user-media", "events/browser", "connection", "connection/batch", "stats", "tracks",
}  # fmt: skip
HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, OPTIONS",
    "Access-Control-Allow-Headers": "content-type, accept",
    "Access-Control-Max-Age": "86400",
}


def is_sdk_route(path: str) -> bool:
    return path.startswith(PREFIX) and path[len(PREFIX) :].rstrip("/") in SDK_ROUTES


def _decorate(response: HttpResponse) -> HttpResponse:
    for key, value in HEADERS.items():
        response[key] = value
    return response


class SdkCorsMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        # Async under daphne so the /stats hot path never hops to a thread for this.
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        if not is_sdk_route(request.path):
            return self.get_response(request)
        if request.method == "OPTIONS":
            return _decorate(HttpResponse(status=204))
        return _decorate(self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        if not is_sdk_route(request.path):
            return await self.get_response(request)
        if request.method == "OPTIONS":
            return _decorate(HttpResponse(status=204))
        return _decorate(await self.get_response(request))
