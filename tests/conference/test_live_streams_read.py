"""GET /v1[.1]/rooms/{r}/streams: v1.0 and v1.1 stream forms with the derived `optional` lists."""

import copy

import pytest

from conference.live_serializers import resolve_resolution
from tests.streamengine import live_state as ls

VIDEO_OPTIONAL = {
    "format": [{"codec": "h264", "profile": "CB"}, {"codec": "vp9"}],
    "parameters": {
        "resolution": [{"width": 480, "height": 360}, {"width": 320, "height": 240}],
        "framerate": [6, 12, 15, 24],
        "bitrate": ["x0.8", "x0.6", "x0.4", "x0.2"],
        "keyFrameInterval": [100, 30, 5, 2, 1],
    },
}


@pytest.fixture
def world(db):
    service, _, client = ls.tenant("tenant-a")
    room = ls.room(service)
    alice = ls.participant(room.id, "alice")
    pub = ls.publication(alice)
    return {"client": client, "room": room, "alice": alice, "pub": pub}


def test_v11_form(world):
    response = world["client"].get(f"/v1.1/rooms/{world['room'].id}/streams")
    assert response.status_code == 200
    (stream,) = response.json()
    assert stream == {
        "id": world["pub"].id,
        "type": "forward",
        "media": {
            "audio": {
                "status": "active",
                "source": "mic",
                "format": {"codec": "opus", "sampleRate": 48000, "channelNum": 2},
                "optional": {"format": [{"codec": "pcmu"}]},
            },
            "video": {
                "status": "active",
                "source": "camera",
                "original": [{"format": {"codec": "vp8"}, "parameters": {"resolution": {"width": 640, "height": 480}}}],
                "optional": VIDEO_OPTIONAL,
            },
        },
        "data": None,
        "info": {"owner": world["alice"].id, "type": "webrtc", "inViews": [], "attributes": {"label": "cam"}},
    }


def test_v10_form_same_ids(world):
    client, room = world["client"], world["room"]
    stream = client.get(f"/v1/rooms/{room.id}/streams/{world['pub'].id}").json()
    video = stream["media"]["video"]
    assert "original" not in video
    assert video["format"] == {"codec": "vp8"}
    assert video["parameters"] == {"resolution": {"width": 640, "height": 480}}
    assert video["optional"] == VIDEO_OPTIONAL
    v11 = client.get(f"/v1.1/rooms/{room.id}/streams/{world['pub'].id}/").json()
    assert v11["id"] == stream["id"] == world["pub"].id
    assert v11["media"]["audio"] == stream["media"]["audio"]


def test_optional_follows_transcoding_switches(world):
    config = copy.deepcopy(ls.ROOM_CONFIG)
    config["transcoding"] = {"audio": False, "video": {"format": False, "parameters": {"framerate": True}}}
    service = world["room"].service
    room = ls.room(service, "no-transcoding", config)
    pub = ls.publication(
        ls.participant(room.id),
        video={"format": {"codec": "h264", "profile": "CB"}, "parameters": {"framerate": 15}},
    )
    stream = world["client"].get(f"/v1.1/rooms/{room.id}/streams/{pub.id}").json()
    assert "optional" not in stream["media"]["audio"]
    assert stream["media"]["video"]["optional"] == {"parameters": {"framerate": [6, 12]}}


def test_simulcast_lists_every_rid_and_no_optional(world):
    pub = world["pub"]
    video = next(t for t in pub.media["tracks"] if t["type"] == "video")
    low = dict(video, id=f"{pub.id}-2", rid="q", parameters={"resolution": {"width": 320, "height": 240}})
    pub.media["tracks"] = [*pub.media["tracks"][:1], dict(video, rid="f"), low]
    pub.data = True
    pub.save()
    stream = world["client"].get(f"/v1.1/rooms/{world['room'].id}/streams/{pub.id}").json()
    assert [entry["simulcastRid"] for entry in stream["media"]["video"]["original"]] == ["f", "q"]
    assert "optional" not in stream["media"]["video"]
    assert stream["data"] is True


def test_unknown_and_foreign(world):
    client, room = world["client"], world["room"]
    response = client.get(f"/v1/rooms/{room.id}/streams/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 1004, "message": "Stream not found"}}
    _, _, other = ls.tenant("tenant-b")
    response = other.get(f"/v1.1/rooms/{room.id}/streams")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == 1003
    assert other.get(f"/v1/rooms/{room.id}/streams/{world['pub'].id}").status_code == 404


def test_room_without_streams_is_empty_list(world):
    room = ls.room(world["room"].service, "empty")
    assert world["client"].get(f"/v1/rooms/{room.id}/streams/").json() == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("vga", {"width": 640, "height": 480}),
        ("r640x360", {"width": 640, "height": 360}),
        ("x2/3", {"width": 426, "height": 320}),
        ("x3/4", {"width": 480, "height": 360}),
        ("x1/0", None),
        ("huge", None),
    ],
)
def test_resolve_resolution(name, expected):
    assert resolve_resolution(name, {"width": 640, "height": 480}) == expected


def test_default_room_optional_lists(world):
    from conference.services import room_create

    room = room_create(service=world["room"].service, name="defaults")
    pub = ls.publication(ls.participant(room.id))
    video = world["client"].get(f"/v1.1/rooms/{room.id}/streams/{pub.id}").json()["media"]["video"]
    assert video["optional"]["format"] == [
        {"codec": "h264", "profile": "CB"},
        {"codec": "h264", "profile": "B"},
        {"codec": "vp9"},
    ]
    assert video["optional"]["parameters"]["resolution"] == [
        {"width": 480, "height": 360},
        {"width": 426, "height": 320},
        {"width": 320, "height": 240},
        {"width": 212, "height": 160},
        {"width": 160, "height": 120},
        {"width": 352, "height": 288},
    ]
    assert video["optional"]["parameters"]["framerate"] == [6, 12, 15, 24]
