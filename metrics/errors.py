"""peermetrics error envelope: ``{"error_code": "...", "message": "..."}``.

Codes, messages and statuses are the reference server's (the SDK's retry logic reads
``error_code``: ``domain_not_allowed``, ``quota_exceeded``, ``invalid_api_key``,
``app_not_recording`` and ``connection_ended`` stop its retries; anything else is retried).
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpResponse, JsonResponse
from rest_framework.response import Response

from owt.errors import ApiError, ErrorFormat, classify

logger = logging.getLogger(__name__)

MESSAGES: dict[str, tuple[str, int]] = {
    "missing_parameters": ("Some parameters are missing from the request.", 400),
    "invalid_parameters": ("Some supplied parameters are not valid.", 400),
    "invalid_api_key": ("Invalid api key.", 400),
    "app_not_recording": ("The requested app is not recording.", 400),
    "domain_not_allowed": ("The app does not allow this domain.", 403),
    "missing_token": ("No token supplied.", 401),
    "invalid_token": ("Invalid token.", 401),
    "expired_token": ("Expired token.", 401),
    "connection_not_found": ("The requested connection does not exist.", 400),
    "connection_ended": ("This connection has ended and we are no longer listening for events.", 400),
    "track_not_found": ("The requested track does not exist.", 400),
    "participant_not_found": ("The requested participant does not exist.", 400),
    "participant_equal_peer": ("The participant and peer can't be the same for an event.", 400),
    "conference_not_found": ("The requested conference does not exist.", 400),
    "app_not_found": ("The requested app does not exist.", 400),
    "organization_not_found": ("The requested organization does not exist.", 400),
    "issue_not_found": ("The requested issue does not exist.", 400),
    "session_not_found": ("The requested session does not exist.", 400),
    "invalid_meta": ("Invalid meta.", 400),
    "method_not_allowed": ("Method not allowed.", 405),
    "unknown_error": ("", 400),
}

# Generic failures (parsing, auth, size, 404 …) raised outside our services.
KIND_CODES = {
    "invalid": "invalid_parameters",
    "parse_error": "unknown_error",
    "too_large": "invalid_parameters",
    "unsupported_media_type": "invalid_parameters",
    "unauthenticated": "not_authenticated",
    "forbidden": "forbidden",
    "not_found": "not_found",
    "method_not_allowed": "method_not_allowed",
    "throttled": "rate_limited",
    "conflict": "invalid_parameters",
    "server": "unknown_error",
    "engine": "unknown_error",
}

STATUS_KIND = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}


class PeermetricsError(ApiError):
    """A reference error code. ``message`` and status are the reference's, exactly; what
    exactly was wrong goes to an extra ``detail`` key (the SDK ignores unknown keys)."""

    def __init__(self, code: str, detail: str | None = None):
        message, status = MESSAGES[code]
        self.kind = STATUS_KIND.get(status, "invalid")
        super().__init__(message, code=code, status=status)
        # ApiError falls back to default_message for an empty one; unknown_error's is "".
        self.message = message
        self.detail = detail or None


class PeermetricsErrorFormat(ErrorFormat):
    def body(self, *, kind: str, status: int, message: str, code: int | str | None) -> Any:
        if isinstance(code, str):
            return {"error_code": code, "message": message}
        return {"error_code": KIND_CODES.get(kind, "unknown_error"), "message": message}

    def payload(self, exc: Exception) -> tuple[int, dict]:
        """(status, body) for any exception; our errors add what exactly was wrong as ``detail``."""
        kind, status, message, code = classify(exc)
        if kind == "server":
            logger.exception("unhandled error", exc_info=exc)
        body = self.body(kind=kind, status=status, message=message, code=code)
        if isinstance(exc, PeermetricsError) and exc.detail:
            body["detail"] = exc.detail
        return status, body

    def response(self, exc: Exception) -> HttpResponse:
        status, body = self.payload(exc)
        return JsonResponse(body, status=status)

    def exception_handler(self, exc: Exception, context: dict) -> Response:
        status, body = self.payload(exc)
        return Response(body, status=status)


ERROR_FORMAT = PeermetricsErrorFormat()
