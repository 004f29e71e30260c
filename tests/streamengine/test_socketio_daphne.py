"""socket.io on the real portal process (daphne): long-polling, the WebSocket upgrade, CORS.

The OWT SDK's socket.io client starts with HTTP long-polling and upgrades to a WebSocket;
this runs :class:`streamengine.sdkflow.SdkFlowClient` that way against daphne on a free
loopback port (embedded defaults: SQLite, in-memory channel layer, media node inside the
portal), with media through the one shared peer connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from django.test import override_settings

from owt.localserver import bootstrapped_portal
from streamengine.client import SyntheticVideoTrack
from streamengine.sdkflow import SdkFlowClient
from streamengine.sio import socketio_application

pytestmark = [pytest.mark.timeout(120), pytest.mark.embedded]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with bootstrapped_portal(tmp_path_factory.mktemp("sio-portal")) as running:
        yield {"url": running.portal.url, "api": running.api}


async def test_polling_upgrades_to_websocket_and_media_flows(portal, loopback_client):
    api = portal["api"]
    room = api.create_room("sio-daphne")["id"]
    async with SdkFlowClient(portal["url"]) as alice, SdkFlowClient(portal["url"]) as bob:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        await bob.join(api.create_token(room, user="bob", role="presenter"))
        for _ in range(50):
            if alice.sio.transport() == "websocket" and bob.sio.transport() == "websocket":
                break
            await asyncio.sleep(0.1)
        assert (alice.sio.transport(), bob.sio.transport()) == ("websocket", "websocket")

        camera = await alice.publish([SyntheticVideoTrack()])
        subscription = await bob.subscribe(camera.id, audio=False)
        frame = await asyncio.wait_for(subscription.tracks["video"].recv(), 10)
        assert (frame.width, frame.height) == (640, 480)
        listed = api.request("GET", f"/v1/rooms/{room}/streams")
        assert [s["id"] for s in listed] == [camera.id]


async def test_long_polling_alone_carries_the_session(portal, loopback_client):
    api = portal["api"]
    room = api.create_room("sio-polling")["id"]
    async with SdkFlowClient(portal["url"], transports=["polling"]) as alice:
        info = await alice.join(api.create_token(room, user="alice", role="presenter"))
        assert alice.sio.transport() == "polling"
        camera = await alice.publish([SyntheticVideoTrack()])
        await alice.text("all", "over polling")
        assert (await alice.wait_for("text"))["message"] == "over polling"
        assert [p["id"] for p in api.request("GET", f"/v1/rooms/{room}/participants")] == [info["id"]]
        assert [s["id"] for s in api.request("GET", f"/v1/rooms/{room}/streams")] == [camera.id]


def test_cors_is_open_by_default_for_the_sample_app_on_another_origin(portal):
    response = httpx.get(
        f"{portal['url']}/socket.io/?EIO=4&transport=polling", headers={"Origin": "http://sample.example:3001"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://sample.example:3001"
    assert response.text.startswith("0{")  # the Engine.IO 4 open packet


@override_settings(SIGNALING_ALLOWED_ORIGINS=["https://app.example"])
async def test_cors_restricted_by_setting():
    async def no_other_routes(scope, receive, send):
        raise AssertionError(scope["path"])

    transport = httpx.ASGITransport(app=socketio_application(no_other_routes))
    async with httpx.AsyncClient(transport=transport, base_url="http://portal") as client:
        allowed = await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://app.example"})
        refused = await client.get("/socket.io/?EIO=4&transport=polling", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert refused.status_code == 400
