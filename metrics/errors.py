"""peermetrics error envelope: ``{"error_code": "...", "message": "..."}``.

Codes, messages and statuses are the reference server's (the SDK's retry logic reads
``error_code``: ``domain_not_allowed``, ``quota_exceeded``, ``invalid_api_key``,
``app_not_recording`` and ``connection_ended`` stop its retries; anything else is retried).
"""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpResponse
from rest_framework.response import Response

from owt.errors import ApiError, ErrorFormat

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

    @staticmethod
    def _with_detail(response: Any, exc: Exception) -> Any:
        detail = getattr(exc, "detail", None)
        if isinstance(exc, PeermetricsError) and detail:
            payload = {**response.data, "detail": detail} if hasattr(response, "data") else None
            if payload is not None:
                response.data = payload
            else:
                response.content = json.dumps({**json.loads(response.content), "detail": detail})
        return response

    def response(self, exc: Exception) -> HttpResponse:
        return self._with_detail(super().response(exc), exc)

    def exception_handler(self, exc: Exception, context: dict) -> Response:
        return self._with_detail(super().exception_handler(exc, context), exc)


ERROR_FORMAT = PeermetricsErrorFormat()
