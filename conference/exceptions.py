"""Domain exceptions of the management API (rendered as OWT ``{"error": {code, message}}``)."""

from owt.errors import ApiError, EngineError, Forbidden, NotFound


class ServiceNotFound(NotFound):
    default_message = "Service not found"
    code = 1002


class RoomNotFound(NotFound):
    default_message = "Room not found"
    code = 1003


class PermissionDenied(Forbidden):
    default_message = "Permission denied"
    code = 1102


class InvalidRequest(ApiError):
    """Request data error: HTTP 400, code 1301 (the spec's table)."""

    default_message = "Invalid request body"
    code = 1301


class EngineFailure(EngineError):
    """The stream engine could not apply a change: HTTP 503, code 1201 (the spec's table)."""

    default_message = "Failed to call the stream engine"
    code = 1201
