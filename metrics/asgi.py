"""The /stats fast path at the ASGI layer.

``POST /metrics/v1/stats`` is the one route with volume (every connection of every call,
every 10 s). :class:`StatsIngestASGI` answers it before Django's request machinery
(middleware chain, URL resolution, the sync middleware's thread hop), with exactly the
same checks and answers as :func:`metrics.views.stats_view`, which serves it when this
wrapper is not installed (the Django test client, ``METRICS_STATS_INGEST=direct``). Every
other request goes to Django untouched.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

from metrics.middleware import HEADERS

PATH = "/metrics/v1/stats"
ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]
RESPONSE_HEADERS = [(b"content-type", b"application/json")] + [
    (key.lower().encode(), value.encode()) for key, value in HEADERS.items()
]


class StatsIngestASGI:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or scope["path"].rstrip("/") != PATH
            or scope["method"] != "POST"
            or settings.METRICS_STATS_INGEST != "bulk"
        ):
            await self.app(scope, receive, send)
            return
        from metrics.views import stats_answer

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if limit is not None and size > limit:
                status, body = 413, {"error_code": "invalid_parameters", "message": "Request body too large"}
                break
            chunks.append(chunk)
            more = message.get("more_body", False)
        else:
            status, body = await stats_answer(b"".join(chunks))
        payload = json.dumps(body).encode()
        headers = [*RESPONSE_HEADERS, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
