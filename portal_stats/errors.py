"""This API's error envelope and the domain errors its services raise.

The portal answers errors as ``{"detail": "<message>", "code": "<kind>"}`` (the original
Django portal used DRF's ``{"detail": ...}``; ``code`` names the failure for programs).
"""

from typing import Any

from rest_framework.response import Response

from owt.errors import ApiError, ErrorFormat, Forbidden, NotFound


class PortalErrorFormat(ErrorFormat):
    def body(self, *, kind: str, status: int, message: str, code: int | str | None) -> Any:
        return {"detail": message, "code": code if isinstance(code, str) else kind}

    def exception_handler(self, exc: Exception, context: dict) -> Response:
        response = super().exception_handler(exc, context)
        # A 401 names the scheme to use (RFC 9110); DRF puts it on the exception, not the response.
        auth_header = getattr(exc, "auth_header", None)
        if response.status_code == 401 and auth_header:
            response["WWW-Authenticate"] = auth_header
        return response


ERROR_FORMAT = PortalErrorFormat()


class InvalidInput(ApiError):
    kind = "invalid"
    default_message = "Invalid request"


class UnknownParent(ApiError):
    """A body names a client / stream / quality id that does not exist (a 400: the body is wrong)."""

    kind = "invalid"
    code = "unknown_id"
    default_message = "Unknown id"


class InvalidRange(ApiError):
    kind = "invalid"
    code = "invalid_range"
    default_message = "Invalid time range"


class UnknownMetric(ApiError):
    kind = "invalid"
    code = "unknown_metric"
    default_message = "Unknown metric"


class ClientNotFound(NotFound):
    default_message = "Client not found"


class StreamNotFound(NotFound):
    default_message = "Stream not found"


class QualityNotFound(NotFound):
    default_message = "Stream quality not found"


class ForeignClient(Forbidden):
    """The caller's key belongs to another client than the one the request names."""

    default_message = "This key does not grant access to that client"


class WrongKeyKind(Forbidden):
    default_message = "Wrong kind of portal key for this route"
