"""Error envelopes, one per API, in one place each.

Services raise :class:`ApiError` subclasses (``RoomNotFound``, ``TokenExpired`` …) with a
*kind* that says what went wrong in API-neutral terms. Each API owns an
:class:`ErrorFormat` that turns a kind into its own wire shape (OWT's
``{"error": {"code", "message"}}``, peermetrics' ``{"error_code", "message"}`` …) and
its DRF views use that format's exception handler. The request-size middleware and the
404 fallback pick the format by URL prefix (``settings.API_ERROR_FORMATS``), so even a
request refused before it reaches a view is answered in its API's own format.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerUnreachable
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from owt.parsers import has_unstorable_text
from owt.throttling import retry_after

logger = logging.getLogger(__name__)

# API-neutral kinds of failure, with their default HTTP status.
KIND_STATUS = {
    "invalid": 400,
    "parse_error": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "too_large": 413,
    "unsupported_media_type": 415,
    "throttled": 429,
    "engine": 503,
    "unavailable": 503,
    "server": 500,
}

# A shared service (Redis cache or channel layer, Celery broker) is unreachable: the request
# may succeed later, so it is a 503, not a server error.
OUTAGES = (RedisConnectionError, RedisTimeoutError, BrokerUnreachable)


class ApiError(Exception):
    """A failure a client should see, independent of the API that reports it."""

    kind = "invalid"
    default_message = "Bad request"
    # An API-specific code the format may prefer to its own mapping (e.g. OWT 1003).
    code: int | str | None = None

    def __init__(self, message: str | None = None, *, code: int | str | None = None, status: int | None = None):
        self.message = message or self.default_message
        if code is not None:
            self.code = code
        self.status = status or KIND_STATUS[self.kind]
        super().__init__(self.message)


class NotFound(ApiError):
    kind = "not_found"
    default_message = "Resource not found"


class Unauthenticated(ApiError):
    kind = "unauthenticated"
    default_message = "Authentication failed"


class Forbidden(ApiError):
    kind = "forbidden"
    default_message = "Permission denied"


class Conflict(ApiError):
    kind = "conflict"
    default_message = "Conflict"


class ServerError(ApiError):
    kind = "server"
    default_message = "Unexpected server error"


class EngineError(ApiError):
    kind = "engine"
    default_message = "Failed to call the stream engine"


def describe_validation_error(detail: Any, path: str = "") -> str:
    """Flatten DRF's nested validation detail into one message naming the field."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # ListSerializer errors are {index: detail}
                return describe_validation_error(value, f"{path}[{key}]")
            name = key if key != "non_field_errors" else ""
            return describe_validation_error(value, f"{path}.{name}" if path and name else (name or path))
    if isinstance(detail, list) and detail:
        for index, item in enumerate(detail):
            if item:
                sub = f"{path}[{index}]" if isinstance(item, (dict, list)) else path
                return describe_validation_error(item, sub)
    text = str(detail)
    return f"{path}: {text}" if path else text


def classify(exc: Exception) -> tuple[str, int, str, int | str | None]:
    """Map any exception to (kind, status, message, api code)."""
    if isinstance(exc, ApiError):
        return exc.kind, exc.status, exc.message, exc.code
    if isinstance(exc, drf_exceptions.ParseError):
        return "parse_error", 400, f"Failed to parse JSON body: {exc.detail}", None
    if isinstance(exc, drf_exceptions.ValidationError):
        return "invalid", 400, describe_validation_error(exc.detail), None
    if isinstance(exc, (drf_exceptions.NotAuthenticated, drf_exceptions.AuthenticationFailed)):
        return "unauthenticated", 401, str(exc.detail), None
    if isinstance(exc, (drf_exceptions.PermissionDenied, DjangoPermissionDenied)):
        return "forbidden", 403, "Permission denied", None
    if isinstance(exc, (drf_exceptions.NotFound, Http404)):
        return "not_found", 404, "Resource not found", None
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        return "method_not_allowed", 405, str(exc.detail), None
    if isinstance(exc, drf_exceptions.UnsupportedMediaType):
        return "unsupported_media_type", 415, str(exc.detail), None
    if isinstance(exc, drf_exceptions.Throttled):
        return "throttled", 429, str(exc.detail), None
    if isinstance(exc, RequestDataTooBig):
        return "too_large", 413, "Request body too large", None
    if isinstance(exc, drf_exceptions.APIException):
        return "invalid", exc.status_code, str(exc.detail), None
    if isinstance(exc, OUTAGES):
        logger.warning("shared service unreachable: %s: %s", type(exc).__name__, exc)
        return "unavailable", 503, "Service temporarily unavailable, try again later", None
    return "server", 500, "Unexpected server error", None


class ErrorFormat:
    """How one API writes its errors. Subclasses override :meth:`body`."""

    def body(self, *, kind: str, status: int, message: str, code: int | str | None) -> Any:
        return {"detail": message}

    def response(self, exc: Exception) -> HttpResponse:
        kind, status, message, code = classify(exc)
        if kind == "server":
            logger.exception("unhandled error", exc_info=exc)
        return JsonResponse(self.body(kind=kind, status=status, message=message, code=code), status=status, safe=False)

    def exception_handler(self, exc: Exception, context: dict) -> Response:
        kind, status, message, code = classify(exc)
        if kind == "server":
            logger.exception("unhandled error", exc_info=exc)
        return Response(self.body(kind=kind, status=status, message=message, code=code), status=status)


class OwtErrorFormat(ErrorFormat):
    """OWT management and stream-engine APIs: ``{"error": {"code": N, "message": "..."}}``.

    Codes follow the spec's table (1301 = request data error / HTTP 400, 1201 = cluster or
    engine failure / HTTP 5xx), not the swapped use in the reference server's code.
    """

    KIND_CODES = {
        "invalid": 1301,
        "parse_error": 1301,
        "too_large": 1301,
        "unsupported_media_type": 1301,
        "conflict": 1301,
        "unauthenticated": 1101,
        "forbidden": 1102,
        "not_found": 1001,
        "method_not_allowed": 1001,
        "throttled": 1102,
        "engine": 1201,
        "unavailable": 1201,
        "server": 2001,
    }

    def body(self, *, kind: str, status: int, message: str, code: int | str | None) -> Any:
        return {
            "error": {"code": code if isinstance(code, int) else self.KIND_CODES.get(kind, 2001), "message": message}
        }


OWT_ERRORS = OwtErrorFormat()
PLAIN_ERRORS = ErrorFormat()


def default_exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler for views that did not pick an API format (admin helpers, health)."""
    view = context.get("view")
    error_format = getattr(view, "error_format", None)
    if error_format is None:
        return drf_exception_handler(exc, context)
    response = error_format.exception_handler(exc, context)
    if isinstance(exc, drf_exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = retry_after(exc.wait)
    return response


def error_format_for_path(path: str) -> ErrorFormat:
    for prefix, dotted in getattr(settings, "API_ERROR_FORMATS", {}).items():
        if path.startswith(prefix):
            return import_string(dotted)
    return PLAIN_ERRORS


class RefusingMiddleware:
    """Refuses some requests before any view, in the API's own format (:meth:`refusal`).

    Sync and async capable, so it costs an ASGI request no hop to a thread.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]):
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return self.refusal(request) or self.get_response(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        return self.refusal(request) or await self.get_response(request)

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        raise NotImplementedError


class RequestSizeLimitMiddleware(RefusingMiddleware):
    """Refuse oversized bodies before any view reads them.

    DRF reads the raw stream and so bypasses ``DATA_UPLOAD_MAX_MEMORY_SIZE``; this puts the
    limit back for every route, whatever the parser. A chunked body (no Content-Length) DRF
    would read as empty: its size is checked here and written into ``CONTENT_LENGTH``.
    """

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        if "CONTENT_LENGTH" not in request.META and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            try:
                # Under ASGI the body is already buffered; Django checks its real size first.
                request.META["CONTENT_LENGTH"] = str(len(request.body))
            except RequestDataTooBig as exc:
                return error_format_for_path(request.path).response(exc)
            return None
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is None or length <= limit:
            return None
        return error_format_for_path(request.path).response(
            RequestDataTooBig(f"Request body too large: {length} bytes, limit {limit}")
        )


class RequestTextMiddleware(RefusingMiddleware):
    """Refuse paths and query strings holding NUL or lone surrogates (ids and filters end up
    in SQL, and PostgreSQL cannot take those characters: it would be a 500)."""

    @staticmethod
    def refusal(request: HttpRequest) -> HttpResponse | None:
        texts = [request.path, *(text for key, values in request.GET.lists() for text in (key, *values))]
        if not any(has_unstorable_text(text) for text in texts):
            return None
        return error_format_for_path(request.path).response(
            ApiError("The path and query must not contain NUL characters or lone surrogates")
        )


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler404: unknown paths under an API prefix answer in that API's format."""
    return error_format_for_path(request.path).response(NotFound())


def server_error_view(request: HttpRequest) -> HttpResponse:
    return error_format_for_path(request.path).response(ServerError())
