"""Signaling over a real WebSocket: login, limits, permissions, text, errors (no media)."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import connect

from streamengine.client import ConferenceClient, SignalingError
from streamengine.models import Participant
from tests.streamengine.helpers import eventually


async def test_login_result_and_join_notification(signaling_url, room, token):
    domain = await room()
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        first = await alice.join(await token(domain, user="alice"))
        assert first["user"] == "alice" and first["role"] == "presenter"
        assert first["permission"] == {
            "publish": {"audio": True, "video": True},
            "subscribe": {"audio": True, "video": True},
        }
        assert first["room"]["id"] == domain and first["room"]["views"] == ["common"]
        assert [p["user"] for p in first["room"]["participants"]] == ["alice"]
        second = await bob.join(await token(domain, role="viewer", user="bob"))
        assert [p["user"] for p in second["room"]["participants"]] == ["alice", "bob"]
        joined = await alice.wait_for("participant", lambda d: d["action"] == "join")
        assert joined["data"] == {"id": second["id"], "user": "bob", "role": "viewer"}
        assert await database_sync_to_async(Participant.objects.filter(domain_id=domain).count)() == 2
        await bob.leave()
        left = await alice.wait_for("participant", lambda d: d["action"] == "leave")
        assert left["data"] == second["id"]
    await eventually(lambda: not Participant.objects.filter(domain_id=domain).exists())


async def test_token_reuse_refused(signaling_url, room, token):
    text = await token(await room())
    async with ConferenceClient(signaling_url) as first:
        await first.join(text)
        async with ConferenceClient(signaling_url) as second:
            with pytest.raises(SignalingError, match="already used"):
                await second.join(text)
            await second.closed.wait()  # a refused login ends the connection


async def test_room_full(signaling_url, room, token):
    domain = await room(participantLimit=1)
    async with ConferenceClient(signaling_url) as first, ConferenceClient(signaling_url) as second:
        await first.join(await token(domain))
        with pytest.raises(SignalingError, match="Room is full"):
            await second.join(await token(domain))


async def test_input_limit_zero_blocks_publishing(signaling_url, room, token):
    from streamengine.client import SyntheticVideoTrack

    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(await room(inputLimit=0)))
        with pytest.raises(SignalingError, match="Too many inputs"):
            await client.publish([SyntheticVideoTrack()])


async def test_viewer_may_not_publish(signaling_url, room, token):
    from streamengine.client import SyntheticAudioTrack

    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(await room(), role="viewer"))
        with pytest.raises(SignalingError, match="unauthorized"):
            await client.publish([SyntheticAudioTrack()])


async def test_login_errors(signaling_url, room, token):
    domain = await room()
    async with ConferenceClient(signaling_url) as client:
        with pytest.raises(SignalingError, match="Unknown client protocol"):
            await client.request(
                "login",
                {"token": await token(domain), "userAgent": {"sdk": {"type": "x", "version": "1"}}, "protocol": "9"},
            )
    async with ConferenceClient(signaling_url) as client:
        with pytest.raises(SignalingError, match="User agent info is incorrect"):
            await client.request("login", {"token": await token(domain), "protocol": "1.2"})
    async with ConferenceClient(signaling_url) as client:
        with pytest.raises(SignalingError, match="Invalid token"):
            await client.join("not-a-token")
    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(domain))
        with pytest.raises(SignalingError, match="Connection is in service"):
            await client.join(await token(domain))
        await client.text("all", "still connected")


async def test_requests_before_login_and_bad_frames(signaling_url):
    async with connect(signaling_url) as ws:
        await ws.send(json.dumps({"type": "request", "id": 1, "event": "publish", "data": {}}))
        assert json.loads(await ws.recv()) == {"type": "ack", "id": 1, "status": "error", "data": "Illegal request"}
        await ws.send("{not json")
        assert json.loads(await ws.recv()) == {"type": "ack", "id": None, "status": "error", "data": "Invalid frame"}
        await ws.send(json.dumps({"type": "request", "id": 2}))
        assert json.loads(await ws.recv())["data"] == "Invalid frame"
        await ws.send(json.dumps({"type": "request", "id": 3, "event": "nope"}))
        assert json.loads(await ws.recv())["data"] == "Unknown request"


async def test_bad_request_data_is_refused(signaling_url, room, token):
    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(await room()))
        for event, data, message in [
            ("publish", {"media": {"tracks": [{"type": "smell", "mid": "0"}]}}, "Invalid track type"),
            ("publish", {"media": None}, "Data-only"),
            (
                "publish",
                {"media": {"tracks": [{"type": "audio", "mid": "0"}]}, "transport": {"type": "quic"}},
                "Invalid transport",
            ),
            ("subscribe", {"media": {"tracks": [{"type": "video", "mid": "0", "from": "nope"}]}}, "Stream not found"),
            ("soac", {"id": 5, "signaling": {"type": "offer"}}, "Invalid soac id"),
            ("soac", {"id": "x"}, "Invalid signaling object"),
            ("soac", {"id": "x", "signaling": {"type": "bogus"}}, "Invalid signaling type"),
            ("soac", {"id": "x", "signaling": {"type": "offer", "sdp": ""}}, "Transport not found"),
            ("unpublish", {"id": "nope"}, "Stream not found"),
            ("stream-control", {"id": "nope", "operation": "pause", "data": "av"}, "Stream not found"),
            ("text", {"to": "", "message": "hi"}, "Invalid receiver"),
            ("text", {"to": "ghost", "message": "hi"}, "Target participant does NOT exist: ghost"),
        ]:
            with pytest.raises(SignalingError, match=message):
                await client.request(event, data)


async def test_text_to_all_and_to_one(signaling_url, room, token):
    domain = await room()
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        a = await alice.join(await token(domain, user="alice"))
        b = await bob.join(await token(domain, user="bob"))
        await alice.text("all", {"hello": "everyone"})
        for client in (alice, bob):
            assert await client.wait_for("text") == {"from": a["id"], "to": "all", "message": {"hello": "everyone"}}
        await bob.text(a["id"], "just you")
        assert await alice.wait_for("text") == {"from": b["id"], "to": "me", "message": "just you"}
