"""The OWT JS SDK's framing and flows: socket.io at ``/socket.io/``, one peer connection per conference.

Clients are :class:`streamengine.sdkflow.SdkFlowClient` (python-socketio + aiortc following
the SDK's ``channel.js`` sequence) against the portal application in the test's loop
(WebSocket transport; polling and the upgrade are exercised against daphne in
``test_socketio_daphne.py``). Every session of a participant shares its one transport.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from asgiref.sync import sync_to_async

from streamengine import services as engine_services
from streamengine.client import ConferenceClient, SignalingError, SyntheticAudioTrack, SyntheticVideoTrack
from streamengine.reconnection import parked_take
from streamengine.sdkflow import SdkFlowClient
from tests.streamengine import live_state as ls
from tests.streamengine.conftest import signaling_url  # noqa: F401  (a real server in the test's loop)
from tests.streamengine.helpers import eventually

pytestmark = pytest.mark.timeout(90)


def base(signaling_url: str) -> str:  # noqa: F811
    return signaling_url.replace("ws://", "http://").removesuffix("/ws/signaling/")


@pytest.fixture
def tenant(transactional_db):
    service, _, client = ls.tenant("tenant-sio")
    room = ls.room(service)

    def token(user: str, role: str = "presenter") -> str:
        return engine_services.token_create(domain_id=room.id, user=user, role=role)

    return {"api": client, "room": room, "token": sync_to_async(token)}


def rest(client: ls.MAuthClient, method: str, *args):
    return sync_to_async(getattr(client, method))(*args)


async def decodes(session, kind: str = "video", frames: int = 5) -> tuple[int, int]:
    """``frames`` decoded frames arrive on the session's ``kind`` track; the last one's size."""
    for _ in range(frames):
        frame = await asyncio.wait_for(session.tracks[kind].recv(), 10)
    return (frame.width, frame.height) if kind == "video" else (frame.sample_rate, frame.samples)


async def test_sdk_flow_shares_one_transport_for_publications_and_subscriptions(signaling_url, tenant):  # noqa: F811
    url, api, room = base(signaling_url), tenant["api"], tenant["room"]
    async with (
        SdkFlowClient(url, transports=["websocket"]) as alice,
        SdkFlowClient(url, transports=["websocket"]) as bob,
    ):
        a = await alice.join(await tenant["token"]("alice"))
        b = await bob.join(await tenant["token"]("bob"))
        assert {p["user"] for p in b["room"]["participants"]} == {"alice", "bob"}
        assert json.loads(base64.b64decode(a["reconnectionTicket"]))["participantId"] == a["id"]

        camera = await alice.publish([SyntheticAudioTrack(), SyntheticVideoTrack()])
        added = await bob.wait_for("stream", lambda d: d["status"] == "add" and d["id"] == camera.id)
        assert [t["type"] for t in added["data"]["media"]["tracks"]] == ["audio", "video"]
        screen = await alice.publish([SyntheticVideoTrack(320, 240)])
        # One transport: the first session's id, returned again for the second.
        assert alice.transport_id == camera.id
        assert len({t.receiver.transport for t in alice.pc.getTransceivers()}) == 1

        first = await bob.subscribe(camera.id)
        second = await bob.subscribe(screen.id, audio=False)
        assert bob.transport_id == first.id
        assert await decodes(first) == (640, 480)
        assert await decodes(second) == (320, 240)
        assert (await decodes(first, "audio"))[0] == 48000
        # One MediaStream per subscription in the answer (the SDK gives each its stream).
        streams = [line.split()[0] for line in bob.pc.remoteDescription.sdp.splitlines() if line.startswith("a=msid:")]
        assert streams == [f"a=msid:{first.id}", f"a=msid:{first.id}", f"a=msid:{second.id}"]

        # REST lists what was created over socket.io exactly as for the JSON framing.
        participants = (await rest(api, "get", f"/v1/rooms/{room.id}/participants")).json()
        assert sorted(p["user"] for p in participants) == ["alice", "bob"]
        streams = (await rest(api, "get", f"/v1.1/rooms/{room.id}/streams")).json()
        assert {s["id"] for s in streams} == {camera.id, screen.id}

        # Unpublish the screen: bob's subscription to it ends, its m-lines stay (inactive),
        # and the transport goes on carrying the camera and a new subscription.
        await alice.unpublish(screen)
        await bob.wait_for("stream", lambda d: d["status"] == "remove" and d["id"] == screen.id)
        # The subscription to it ends with it, and its subscriber is told (as OWT does).
        async with asyncio.timeout(10):
            while second.error is None:
                await asyncio.sleep(0.05)
        assert second.error == "Source stream loss"
        with pytest.raises(SignalingError, match="Subscription not found"):
            await bob.unsubscribe(second)
        third = await bob.subscribe(camera.id, audio=False)
        assert await decodes(third) == (640, 480)
        await bob.unsubscribe(third)
        fourth = await bob.subscribe(camera.id, audio=False)
        assert await decodes(fourth) == (640, 480)
        assert await decodes(first) == (640, 480)
        # audio+video, video, video, video: the SDK never removes m-lines, ended ones are inactive.
        answer = bob.pc.remoteDescription.sdp
        assert answer.count("m=") == 5
        assert answer.count("a=inactive") == 2

        # subscription-control update: another resolution, same m-line, no renegotiation.
        await bob.update(fourth, {"resolution": {"width": 320, "height": 240}})
        for _ in range(60):
            if (await decodes(fourth, frames=1)) == (320, 240):
                break
        else:
            pytest.fail("the update to 320x240 never reached the subscriber")

        await alice.text(b["id"], "to bob")
        assert await bob.wait_for("text", lambda d: d["message"] == "to bob") == {
            "from": a["id"],
            "to": "me",
            "message": "to bob",
        }
        await bob.text("all", {"hello": "everyone"})
        assert (await alice.wait_for("text"))["to"] == "all"
        assert (await bob.wait_for("text", lambda d: d["from"] == b["id"]))["message"] == {"hello": "everyone"}


async def test_streams_offer_the_subscription_capabilities_the_sdk_reads(signaling_url, tenant):  # noqa: F811
    url = base(signaling_url)
    async with (
        SdkFlowClient(url, transports=["websocket"]) as alice,
        SdkFlowClient(url, transports=["websocket"]) as bob,
    ):
        await alice.join(await tenant["token"]("alice"))
        await bob.join(await tenant["token"]("bob"))
        camera = await alice.publish([SyntheticVideoTrack()])
        # Once the resolution is measured the whole stream is sent again (``field: "."``).
        update = await bob.wait_for(
            "stream",
            lambda d: d["status"] == "update" and d["data"]["field"] == "." and d["id"] == camera.id,
            timeout=30,  # measured from the first frames, which a loaded machine delays
        )
        video = update["data"]["value"]["media"]["tracks"][0]
        assert video["parameters"]["resolution"] == {"width": 640, "height": 480}
        optional = video["optional"]
        assert {"width": 320, "height": 240} in optional["parameters"]["resolution"]
        assert all(r["width"] < 640 for r in optional["parameters"]["resolution"])
        assert set(optional["parameters"]) == {"resolution", "framerate", "bitrate", "keyFrameInterval"}
        assert {f["codec"] for f in optional["format"]} <= {"h264", "vp8"}
        # Subscribing with one of them takes the transcoding path.
        subscription = await bob.subscribe(
            camera.id, audio=False, video_parameters={"resolution": {"width": 320, "height": 240}}
        )
        assert await decodes(subscription) == (320, 240)


async def test_sdk_errors_come_back_as_error_acks(signaling_url, tenant):  # noqa: F811
    url = base(signaling_url)
    async with (
        SdkFlowClient(url, transports=["websocket"]) as alice,
        SdkFlowClient(url, transports=["websocket"]) as eve,
    ):
        with pytest.raises(SignalingError, match="Illegal request"):
            await alice.request("publish", {"media": None})
        a = await alice.join(await tenant["token"]("alice"))
        with pytest.raises(SignalingError, match="Connection is in service"):
            await alice.join(await tenant["token"]("alice2"))
        with pytest.raises(SignalingError, match="Invalid track type"):
            await alice.request("publish", {"media": {"tracks": [{"type": "data", "mid": "0"}]}})
        with pytest.raises(SignalingError, match="Simulcast"):
            await alice.request("publish", {"media": {"tracks": [{"type": "video", "mid": "0", "rid": "q"}]}})
        with pytest.raises(SignalingError, match="Unknown request"):
            await alice.request("no-such-event", {})
        camera = await alice.publish([SyntheticVideoTrack()])

        # Another participant cannot use alice's transport: the session fails, nothing hangs.
        await eve.join(await tenant["token"]("eve"))
        with pytest.raises(SignalingError, match="Transport not found"):
            await eve.request("soac", {"id": alice.transport_id, "signaling": {"type": "offer", "sdp": "v=0"}})
        eve.transport_id = alice.transport_id
        with pytest.raises(SignalingError, match="Transport not found"):
            await eve.subscribe(camera.id, audio=False, timeout=5)
        assert a["id"] != eve.info["id"]


async def test_relogin_answers_the_js_sdk_with_a_ticket_string_and_replays(signaling_url, tenant):  # noqa: F811
    url = base(signaling_url)
    async with SdkFlowClient(url, transports=["websocket"]) as bob, ConferenceClient(signaling_url) as alice:
        ticket = (await bob.join(await tenant["token"]("bob")))["reconnectionTicket"]
        await alice.join(await tenant["token"]("alice"))
        await bob.sio.disconnect()  # the socket drops without logout: bob is parked
        await eventually(lambda: parked_take(bob.info["id"]) is not None, db=False)
        await alice.text("all", "while you were away")

        bob.sio = type(bob.sio)(reconnection=False)
        for event in ("participant", "text", "stream", "progress", "drop"):
            bob.sio.on(event, bob._notification_handler(event))
        await bob.connect()
        new_ticket = await bob.request("relogin", ticket)
        # The JS SDK's form: the ack is the new ticket string (owt-compat §11 item 11) ...
        assert isinstance(new_ticket, str)
        assert json.loads(base64.b64decode(new_ticket))["participantId"] == bob.info["id"]
        # ... and what it missed follows as notifications.
        assert (await bob.wait_for("text"))["message"] == "while you were away"
        assert (await bob.request("refreshReconnectionTicket")) != new_ticket


async def test_relogin_keeps_the_documented_shape_for_other_sdks(signaling_url, tenant):  # noqa: F811
    async with ConferenceClient(signaling_url) as bob:
        ticket = (await bob.join(await tenant["token"]("bob")))["reconnectionTicket"]
        await bob.ws.close()
        await eventually(lambda: parked_take(bob.info["id"]) is not None, db=False)
    async with ConferenceClient(signaling_url) as bob_again:
        resumed = await bob_again.relogin(ticket)
        assert set(resumed) == {"ticket", "messages"}
        await bob_again.leave()


async def test_json_frame_clients_may_join_a_transport_too(signaling_url, tenant):  # noqa: F811
    """The JSON framing speaks the same session: the Python client keeps one transport per
    session, the SDK flow client shares one; they see each other's streams."""
    url = base(signaling_url)
    async with ConferenceClient(signaling_url) as alice, SdkFlowClient(url, transports=["websocket"]) as bob:
        await alice.join(await tenant["token"]("alice"))
        await bob.join(await tenant["token"]("bob"))
        camera = await alice.publish([SyntheticVideoTrack()])
        screen = await alice.publish([SyntheticVideoTrack(320, 240)])
        assert camera.pc is not screen.pc
        first = await bob.subscribe(camera.id, audio=False)
        second = await bob.subscribe(screen.id, audio=False)
        assert await decodes(first) == (640, 480) and await decodes(second) == (320, 240)
        mine = await bob.publish([SyntheticAudioTrack()])
        subscription = await alice.subscribe(mine.id, video=False)
        assert (await asyncio.wait_for(subscription.tracks["audio"].recv(), 10)).sample_rate == 48000


async def test_a_simulcast_offer_is_refused_with_a_clear_error(signaling_url, tenant):  # noqa: F811
    """The SDK's simulcast publish carries ``a=rid``/``a=simulcast`` in the offer, not in the request."""
    from aiortc import RTCPeerConnection

    url = base(signaling_url)
    async with SdkFlowClient(url, transports=["websocket"]) as alice:
        await alice.join(await tenant["token"]("alice"))
        pc = RTCPeerConnection()
        try:
            transceiver = pc.addTransceiver(SyntheticVideoTrack(), direction="sendonly")
            await pc.setLocalDescription(await pc.createOffer())
            ack = await alice.request(
                "publish",
                {"media": {"tracks": [{"type": "video", "mid": transceiver.mid}]}, "transport": {"type": "webrtc"}},
            )
            layers = "a=rid:q send\r\na=rid:h send\r\na=simulcast:send q;h\r\n"
            sdp = pc.localDescription.sdp.replace(
                f"a=mid:{transceiver.mid}\r\n", f"a=mid:{transceiver.mid}\r\n{layers}"
            )
            await alice.request("soac", {"id": ack["transportId"], "signaling": {"type": "offer", "sdp": sdp}})
            error = await alice.wait_for("progress", lambda d: d.get("status") == "error")
            assert error == {
                "id": ack["transportId"],
                "sessionId": ack["id"],
                "status": "error",
                "data": "Simulcast (rid layers) is not supported: publish a single encoding",
            }
        finally:
            await pc.close()
