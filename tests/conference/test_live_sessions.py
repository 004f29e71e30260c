"""The live management resources acting on real signaling sessions (Python client over WebSocket)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from streamengine import services as engine_services
from streamengine.client import ConferenceClient, SignalingError, SyntheticAudioTrack, SyntheticVideoTrack
from streamengine.models import Participant, Publication
from tests.streamengine import live_state as ls
from tests.streamengine.conftest import signaling_url  # noqa: F401  (a real WebSocket server fixture)
from tests.streamengine.helpers import eventually


@pytest.fixture
def tenant(transactional_db):
    service, _, client = ls.tenant("tenant-a")
    room = ls.room(service)

    def token(user: str, role: str = "presenter") -> str:
        return engine_services.token_create(domain_id=room.id, user=user, role=role)

    return {"api": client, "room": room, "token": sync_to_async(token)}


def call(client: ls.MAuthClient, method: str, *args):
    return sync_to_async(getattr(client, method))(*args)


async def test_list_patch_permission_takes_effect_and_delete_drops(signaling_url, tenant):  # noqa: F811
    api, room = tenant["api"], tenant["room"]
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        a = await alice.join(await tenant["token"]("alice"))
        b = await bob.join(await tenant["token"]("bob"))
        listed = (await call(api, "get", f"/v1/rooms/{room.id}/participants")).json()
        assert [(p["id"], p["user"]) for p in listed] == [(a["id"], "alice"), (b["id"], "bob")]

        path = f"/v1.1/rooms/{room.id}/participants/{b['id']}"
        response = await call(
            api, "patch", path, [{"op": "replace", "path": "/permission/publish/audio", "value": False}]
        )
        assert response.status_code == 200
        assert response.json()["permission"]["publish"] == {"audio": False, "video": True}
        with pytest.raises(SignalingError, match="unauthorized"):
            await bob.publish([SyntheticAudioTrack()])
        response = await call(
            api,
            "patch",
            path,
            [{"op": "replace", "path": "/permission/publish", "value": {"audio": True, "video": False}}],
        )
        assert response.json()["permission"]["publish"] == {"audio": True, "video": False}
        with pytest.raises(SignalingError, match="unauthorized"):
            await bob.publish([SyntheticVideoTrack()])

        response = await call(api, "delete", f"/v1/rooms/{room.id}/participants/{a['id']}")
        assert (response.status_code, response.content) == (200, b"")
        assert await alice.wait_for("drop") is None
        await asyncio.wait_for(alice.closed.wait(), 5)
        assert (await bob.wait_for("participant", lambda d: d["action"] == "leave"))["data"] == a["id"]
        await eventually(lambda: not Participant.objects.filter(id=a["id"]).exists())
        response = await call(api, "get", f"/v1/rooms/{room.id}/participants/{a['id']}")
        assert response.status_code == 404


@pytest.mark.media
async def test_stream_status_views_and_delete(signaling_url, tenant):  # noqa: F811
    api, room = tenant["api"], tenant["room"]
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        a = await alice.join(await tenant["token"]("alice"))
        await bob.join(await tenant["token"]("bob"))
        publication = await alice.publish([SyntheticVideoTrack(), SyntheticAudioTrack()], attributes={"label": "cam"})
        await bob.wait_for("stream", lambda d: d["status"] == "add")

        (stream,) = (await call(api, "get", f"/v1.1/rooms/{room.id}/streams")).json()
        assert stream["id"] == publication.id
        assert stream["info"]["owner"] == a["id"]
        assert stream["media"]["video"]["original"][0]["format"]["codec"] == "vp8"
        assert stream["media"]["video"]["status"] == "active"
        assert "optional" in stream["media"]["video"]
        v10 = (await call(api, "get", f"/v1/rooms/{room.id}/streams/{publication.id}")).json()
        assert v10["media"]["video"]["format"] == stream["media"]["video"]["original"][0]["format"]

        path = f"/v1.1/rooms/{room.id}/streams/{publication.id}"
        response = await call(
            api,
            "patch",
            path,
            [
                {"op": "replace", "path": "/media/video/status", "value": "inactive"},
                {"op": "add", "path": "/info/inViews", "value": "common"},
            ],
        )
        assert response.status_code == 200
        assert response.json()["media"]["video"]["status"] == "inactive"
        assert response.json()["info"]["inViews"] == ["common"]
        update = await bob.wait_for(
            "stream", lambda d: d["status"] == "update" and d["data"]["field"] == "video.status"
        )
        assert update == {
            "id": publication.id,
            "status": "update",
            "data": {"field": "video.status", "value": "inactive"},
        }

        bad = await call(api, "patch", path, [{"op": "add", "path": "/info/inViews", "value": "nope"}])
        assert bad.status_code == 400
        assert "not a view of this room" in bad.json()["error"]["message"]

        response = await call(api, "delete", path)
        assert response.status_code == 200
        removed = await bob.wait_for("stream", lambda d: d["status"] == "remove")
        assert removed == {"id": publication.id, "status": "remove"}
        await eventually(lambda: not Publication.objects.filter(id=publication.id).exists())
        assert (await call(api, "get", path)).status_code == 404


async def test_stream_engine_delete_participant_drops(signaling_url, tenant):  # noqa: F811
    api = tenant["api"]
    async with ConferenceClient(signaling_url) as alice:
        a = await alice.join(await tenant["token"]("alice"))
        listed = (await call(api, "get", "/v1.1/stream-engine/participants")).json()
        assert [p["id"] for p in listed["data"]] == [a["id"]]
        assert listed["data"][0]["locality"] is not None  # placed on the embedded media node
        nodes = (await call(api, "get", "/v1.1/stream-engine/nodes")).json()
        assert nodes["total"] >= 1
        response = await call(api, "delete", f"/v1.1/stream-engine/participants/{a['id']}")
        assert response.status_code == 200
        assert await alice.wait_for("drop") is None
