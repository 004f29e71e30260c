"""The signaling session over socket.io, for the unmodified OWT JavaScript SDK (``/socket.io/``).

The OWT SDK's ``SioSignaling`` speaks socket.io: requests are ``emit(name, data, ack)``
answered ``ack(status, data)``, notifications are server ``emit(name, data)``. This module
is that framing only: each socket.io connection is one :class:`SocketIOSession`, the same
:class:`~streamengine.consumers.SignalingSession` the JSON-frame consumer is, so both
framings run one implementation of protocol 1.2. python-socketio serves Engine.IO 4
(socket.io 3 and 4 clients; the OWT 5.1 sample loads socket.io-client 3.1.2), polling and
the WebSocket upgrade.

The platform's messages reach a session on its own Channels channel (``new_channel``),
read by a task per connection and dispatched to the session's ``engine_*`` handlers, as
Channels does for a consumer; so socket.io sessions on several portals meet in one room
through the Redis channel layer. Engine.IO's polling keeps a session in the memory of the
process that opened it: behind a load balancer, route ``/socket.io/`` with sticky sessions
(docs/signaling.md), or configure ``SOCKETIO_TRANSPORTS=websocket`` for clients that open
a WebSocket directly.
"""

from __future__ import annotations

import asyncio
import logging

import socketio
from channels.layers import get_channel_layer
from django.conf import settings

from streamengine import lifecycle
from streamengine.consumers import SignalingSession

logger = logging.getLogger(__name__)


class SocketIOSession(SignalingSession):
    # The OWT JS SDK keeps one RTCPeerConnection per conference for all its sessions.
    keeps_transports = True

    def __init__(self, server: socketio.AsyncServer, sid: str, scope: dict) -> None:
        self.server = server
        self.sid = sid
        self.scope = scope
        self.channel_layer = get_channel_layer()
        self.channel_name = ""
        self.reader: asyncio.Task | None = None

    async def open(self) -> None:
        self.channel_name = await self.channel_layer.new_channel()
        await self.start()
        self.reader = asyncio.create_task(self._read_channel())

    async def _read_channel(self) -> None:
        lifecycle.track_connection()
        try:
            while True:
                message = await self.channel_layer.receive(self.channel_name)
                handler = getattr(self, message.get("type", "").replace(".", "_"), None)
                if handler is None or not message["type"].startswith("engine."):
                    logger.warning("socket.io session %s: no handler for %s", self.sid, message.get("type"))
                    continue
                await handler(message)
        except asyncio.CancelledError:
            if not self.closing:
                # The server is stopping (``lifecycle.shutdown``): leave now, no parking.
                self.leaving = True
                await self.disconnect(1001)
            raise

    async def notify(self, event: str, data: object = None) -> None:
        if not self.closing:
            await self.server.emit(event, data, to=self.sid)

    async def close(self) -> None:
        await self.server.disconnect(self.sid)

    async def closed(self) -> None:
        """The socket is gone (client left, transport lost, or :meth:`close`)."""
        self.closing = True
        if self.reader is not None and self.reader is not asyncio.current_task():
            self.reader.cancel()
        await self.disconnect(1000)


def _ack(status: str, data: object) -> tuple:
    # The SDK's ack callback takes ``(status, data)``; a tuple becomes separate ack arguments.
    return (status,) if data is None else (status, data)


def socketio_server() -> socketio.AsyncServer:
    """The portal's socket.io server (``SIGNALING_ALLOWED_ORIGINS`` and the frame limit apply)."""
    origins = settings.SIGNALING_ALLOWED_ORIGINS
    server = socketio.AsyncServer(
        async_mode="asgi",
        cors_allowed_origins="*" if origins == ["*"] else origins,
        max_http_buffer_size=settings.SIGNALING_MAX_FRAME_LENGTH,
        transports=settings.SOCKETIO_TRANSPORTS,
        logger=False,
        engineio_logger=False,
    )
    sessions: dict[str, SocketIOSession] = {}

    @server.event
    async def connect(sid: str, environ: dict, auth: object = None) -> None:
        session = sessions[sid] = SocketIOSession(server, sid, environ.get("asgi.scope", {}))
        await session.open()

    @server.event
    async def disconnect(sid: str, reason: object = None) -> None:
        session = sessions.pop(sid, None)
        if session is not None:
            await session.closed()

    @server.on("*")
    async def request(event: str, sid: str, data: object = None, *ignored: object) -> tuple:
        session = sessions.get(sid)
        if session is None:
            return _ack("error", "Illegal request")
        status, ack_data, after = await session.dispatch_request(event, data)
        if after is not None:
            # After the ack: a refused login or a logout closes the socket, a relogin replays.
            asyncio.get_running_loop().call_soon(asyncio.ensure_future, after())
        return _ack(status, ack_data)

    return server


def socketio_application(other_application) -> socketio.ASGIApp:
    """``/socket.io/`` (HTTP long-polling and WebSocket) served by socket.io, the rest by ``other_application``."""
    return socketio.ASGIApp(socketio_server(), other_asgi_app=other_application, socketio_path="socket.io")
