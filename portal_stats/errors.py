"""This API's error envelope and the domain errors its services raise.

The portal answers errors as ``{"detail": "<message>", "code": "<kind>"}`` (the original
Django portal used DRF's ``{"detail": ...}``; ``code`` names the failure for programs).
"""

from typing import Any

from owt.errors import ApiError, ErrorFormat, NotFound


class PortalErrorFormat(ErrorFormat):
    def body(self, *, kind: str, status: int, message: str, code: int | str | None) -> Any:
        return {"detail": message, "code": code if isinstance(code, str) else kind}


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
