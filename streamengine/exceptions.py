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


class InvalidRole(ApiError):
    kind = "forbidden"
    default_message = "Invalid role"


class RoomFull(ApiError):
    kind = "conflict"
    default_message = "Room is full"


class TooManyInputs(ApiError):
    kind = "conflict"
    default_message = "Too many inputs"


class Unauthorized(ApiError):
    """A participant's permission (role or PATCHed) does not allow the request."""

    kind = "forbidden"
    default_message = "unauthorized"


class ParticipantNotFound(NotFound):
    default_message = "Participant not found"
    code = 1005


class StreamNotFound(NotFound):
    default_message = "Stream not found"
    code = 1004


class ViewNotFound(NotFound):
    default_message = "View not found"


class ProcessorNotFound(NotFound):
    default_message = "Processor not found"


class InvalidProcessor(ApiError):
    default_message = "Invalid processor"


class InvalidRegion(ApiError):
    default_message = "Invalid region"


class SubscriptionNotFound(NotFound):
    default_message = "Subscription not found"


class JobNotFound(NotFound):
    default_message = "Job not found"


class TransportNotFound(NotFound):
    default_message = "Transport not found"


class TextTargetNotFound(NotFound):
    default_message = "Target participant does NOT exist"


class NoMediaNode(ApiError):
    kind = "engine"
    default_message = "No media node available"


class NodeNotFound(NotFound):
    default_message = "Node not found"


class InvalidJobRequest(ApiError):
    """A media job's request (streaming-in, recording, streaming-out) is invalid: HTTP 400, code 1301."""

    default_message = "Invalid request body"
    code = 1301


class InvalidListQuery(ApiError):
    default_message = "Invalid list query"


class SourceRefused(ApiError):
    """A streaming-in URL the SSRF policy refuses (scheme, host, address): HTTP 400."""

    default_message = "Source URL refused"


class StreamingInFailed(ApiError):
    """The streaming-in job could not publish its stream (unreachable source, no worker):
    an engine failure (1201, HTTP 503 in OWT's format), with the job's reason."""

    kind = "engine"
    default_message = "Streaming-in failed"
