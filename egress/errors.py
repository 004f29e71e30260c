"""The egress API's error envelope and its errors.

The original answers every error as ``{"error": "<text>", "request_id": "<echo>"}``; so do
we, with the status codes the reference recommends where the original's were wrong (409 for
a ``request_id`` reused for another request instead of 500, 404 for an unknown task on stop
instead of 200 + ``rejected``).
"""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.response import Response

from owt.errors import ApiError, Conflict, ErrorFormat, NotFound, classify

logger = logging.getLogger(__name__)


class TaskNotFound(NotFound):
    default_message = "task not found"


class ChannelNotFound(NotFound):
    default_message = "channel not found"


class DuplicateRequest(Conflict):
    default_message = "request_id already used for another request"


class AppMismatch(ApiError):
    kind = "forbidden"
    default_message = "the credentials are not this app's"


class EgressErrorFormat(ErrorFormat):
    def body(self, *, kind: str, status: int, message: str, code: int | str | None) -> Any:
        return {"error": message}

    def exception_handler(self, exc: Exception, context: dict) -> Response:
        kind, status, message, code = classify(exc)
        if kind == "server":
            logger.exception("unhandled error", exc_info=exc)
        body = self.body(kind=kind, status=status, message=message, code=code)
        request_id = _request_id(context.get("request"))
        if request_id:
            body["request_id"] = request_id
        task_id = (context.get("kwargs") or {}).get("task_id")
        if task_id:
            body["task_id"] = task_id
        return Response(body, status=status)


def _request_id(request: Any) -> str:
    """The request's ``request_id`` to echo, if its body parsed and has a short string one."""
    try:
        data = request.data if request is not None else None
    except Exception:
        return ""
    value = data.get("request_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) <= 32 else ""


ERROR_FORMAT = EgressErrorFormat()
