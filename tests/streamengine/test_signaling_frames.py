"""Hostile signaling input: bad frames get an error ack on an open socket, a crashed
consumer leaves at once, and the Origin allow-list guards the handshake."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from streamengine.asgi_ws import serve_asgi
from streamengine.client import SDK, ConferenceClient, SignalingError
from streamengine.consumers import SignalingConsumer
from streamengine.models import Participant
from tests.streamengine.helpers import eventually

INVALID = {"type": "ack", "id": None, "status": "error", "data": "Invalid frame"}


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def login(ws, token: str) -> dict:
    data = {"token": token, "userAgent": SDK, "protocol": "1.2"}
    await ws.send(json.dumps({"type": "request", "id": 1, "event": "login", "data": data}))
    ack = json.loads(await ws.recv())
    assert ack["status"] == "ok"
    return ack["data"]


async def test_bad_frames_get_an_error_ack_and_the_participant_stays(signaling_url, room, token, settings):
    text = json.dumps({"type": "request", "id": 2, "event": "text", "data": {"to": "all", "message": "x" * 100}})
    async with connect(signaling_url) as ws:
        joined = await login(ws, await token(await room()))
        settings.SIGNALING_MAX_FRAME_LENGTH = len(text) - 1
        for frame in (nested(5000), nested(100_000), text, b"\x00binary"):
            await ws.send(frame)
            assert json.loads(await ws.recv()) == INVALID
        # Still open and still in the room: the next request is served.
        await ws.send(json.dumps({"type": "request", "id": 3, "event": "refreshReconnectionTicket"}))
        assert json.loads(await ws.recv())["status"] == "ok"
        assert await database_sync_to_async(Participant.objects.filter(id=joined["id"]).exists)()


async def test_deep_nesting_inside_a_request_is_an_error_ack(signaling_url, room, token):
    async with connect(signaling_url) as ws:
        await login(ws, await token(await room()))
        await ws.send(
            f'{{"type": "request", "id": 2, "event": "text", "data": {{"to": "all", "message": {nested(5000)}}}}}'
        )
        assert json.loads(await ws.recv()) == INVALID


async def test_a_crashed_consumer_leaves_at_once_without_parking(signaling_url, room, token, monkeypatch):
    domain = await room()
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        a = await alice.join(await token(domain, user="alice"))  # a reconnecting SDK: it would be parked
        await bob.join(await token(domain, user="bob"))

        async def crash(self, message):
            raise RuntimeError("the channel layer failed")

        monkeypatch.setattr(SignalingConsumer, "engine_notify", crash)
        await bob.text(a["id"], "only alice's consumer receives this and crashes")
        await alice.closed.wait()
        assert alice.ws.close_code == 1011
        await eventually(lambda: not Participant.objects.filter(id=a["id"]).exists())


async def test_an_unreachable_channel_layer_is_an_error_ack_on_an_open_socket(signaling_url, room, token, monkeypatch):
    domain = await room()
    async with ConferenceClient(signaling_url) as alice:
        await alice.join(await token(domain))

        async def unreachable(*args, **kwargs):
            raise ConnectionError("Error connecting to Redis")

        monkeypatch.setattr(get_channel_layer(), "group_send", unreachable)
        with pytest.raises(SignalingError, match="Internal error"):
            await alice.text("all", "hello")
        monkeypatch.undo()
        assert await alice.request("refreshReconnectionTicket")


async def test_any_origin_is_accepted_by_default(signaling_url):
    async with connect(signaling_url, origin="https://anywhere.example") as ws:
        await ws.send("{")
        assert json.loads(await ws.recv()) == INVALID


async def test_origin_allow_list_refuses_other_pages(signaling_url, settings):
    from streamengine.routing import websocket_application

    settings.SIGNALING_ALLOWED_ORIGINS = ["https://app.example"]
    async with serve_asgi(websocket_application()) as base:
        url = f"{base}/ws/signaling/"
        for allowed in ({"origin": "https://app.example"}, {}):  # no Origin: a native SDK
            async with connect(url, **allowed) as ws:
                await ws.send("{")
                assert json.loads(await ws.recv()) == INVALID
        async with connect(url, origin="https://evil.example") as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
