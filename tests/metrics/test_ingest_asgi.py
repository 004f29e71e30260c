"""The ASGI fast path for /stats: same answers as the view, group commit, nothing lost."""

from __future__ import annotations

import asyncio
import json

import pytest

from metrics.models import GenericEvent
from metrics.testing import stats_payload

pytestmark = pytest.mark.django_db(transaction=True)


async def asgi_post(path: str, body: bytes) -> tuple[int, dict, bytes]:
    from owt.asgi import application

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80), "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"text/plain;charset=UTF-8")],
    }  # fmt: skip
    chunks = [body[: len(body) // 2], body[len(body) // 2 :]]  # exercise more_body
    answer: dict = {"body": b""}

    async def receive() -> dict:
        if chunks:
            chunk = chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}
        await asyncio.sleep(3600)

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            answer["status"], answer["headers"] = message["status"], dict(message["headers"])
        else:
            answer["body"] += message.get("body", b"")

    await application(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"]


def test_stats_fast_path(app, sdk, settings):
    sdk.join(app.api_key, "room", "alice")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "bob"})

    def body(index: int, **changes) -> bytes:
        payload = {
            "token": sdk.token,
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "data": stats_payload(index),
        }
        payload.update(changes)
        return json.dumps(payload).encode()

    async def burst() -> list:
        return await asyncio.gather(*(asgi_post("/metrics/v1/stats", body(i)) for i in range(40)))

    answers = asyncio.run(burst())
    assert {status for status, _, _ in answers} == {200}
    assert all(raw == b'""' and headers[b"access-control-allow-origin"] == b"*" for _, headers, raw in answers)
    assert GenericEvent.objects.filter(category="S", connection_id=ids["connection_id"]).count() == 40

    status, headers, raw = asyncio.run(asgi_post("/metrics/v1/stats", body(0, token="forged")))
    assert (status, json.loads(raw)) == (401, {"error_code": "invalid_token", "message": "Invalid token."})
    assert headers[b"access-control-allow-origin"] == b"*"
    status, _, raw = asyncio.run(
        asgi_post("/metrics/v1/stats", body(0, connectionId="00000000-0000-0000-0000-000000000000"))
    )
    assert json.loads(raw)["error_code"] == "connection_not_found"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 500
    status, _, raw = asyncio.run(asgi_post("/metrics/v1/stats", body(0)))
    assert status == 413 and json.loads(raw)["error_code"] == "invalid_parameters"
    # Anything else is Django's.
    status, _, raw = asyncio.run(asgi_post("/metrics/v1/connection", b"{}"))
    assert (status, json.loads(raw)["error_code"]) == (401, "missing_token")
    assert GenericEvent.objects.filter(category="S").count() == 40

    # Ending the connection is seen by the fast path at once (same process).
    sdk.post("connection", {"eventName": "removeConnection", "peerId": "bob", "connectionId": ids["connection_id"]})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
    status, _, raw = asyncio.run(asgi_post("/metrics/v1/stats", body(1)))
    assert (status, json.loads(raw)["error_code"]) == (400, "connection_ended")
