"""Domain exceptions raised by the engine's services (rendered by each API's error format)."""

from owt.errors import ApiError, NotFound


class DomainNotFound(NotFound):
    default_message = "Room not found"
    code = 1003


class InvalidTokenRequest(ApiError):
    default_message = "Name or role not valid"


class InvalidToken(ApiError):
    kind = "unauthenticated"
    default_message = "Invalid token signature"


class TokenExpired(ApiError):
    kind = "unauthenticated"
    default_message = "Expired"


class TokenAlreadyUsed(ApiError):
    kind = "unauthenticated"
    default_message = "Token not found or already used"
