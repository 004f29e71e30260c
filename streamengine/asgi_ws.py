"""A minimal in-process ASGI WebSocket server (``websockets``) for tests and benchmarks.

Runs the portal's WebSocket application in the caller's event loop, so the embedded
media node, the in-memory channel layer and the test share one loop and one process
(and the test database). Production serves the same application with daphne.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed


async def _bridge(application, connection: ServerConnection) -> None:
    request = connection.request
    parts = urlsplit(request.path)
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.raw_items()],
        "client": connection.remote_address[:2],
        "server": connection.local_address[:2],
        "subprotocols": [],
    }
    inbox: asyncio.Queue = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})

    async def pump() -> None:
        try:
            async for message in connection:
                if isinstance(message, str):
                    await inbox.put({"type": "websocket.receive", "text": message})
                else:
                    await inbox.put({"type": "websocket.receive", "bytes": message})
        except ConnectionClosed:
            pass
        await inbox.put({"type": "websocket.disconnect", "code": connection.close_code or 1000})

    async def send(message: dict) -> None:
        with contextlib.suppress(ConnectionClosed):
            if message["type"] == "websocket.send":
                await connection.send(message["text"] if message.get("text") is not None else message["bytes"])
            elif message["type"] == "websocket.close":
                await connection.close(message.get("code", 1000))

    pumping = asyncio.create_task(pump())
    try:
        await application(scope, inbox.get, send)
    finally:
        pumping.cancel()


@contextlib.asynccontextmanager
async def serve_asgi(application, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``application`` (its websocket routes); yields ``ws://host:port``."""
    async with serve(lambda c: _bridge(application, c), host, port) as server:
        bound = next(iter(server.sockets)).getsockname()
        yield f"ws://{bound[0]}:{bound[1]}"
