"""Rooms over HTTP with real MAuth headers: defaults, validation, PUT/PATCH, pagination, isolation."""

import json

import pytest

from conference.models import Room
from conference.roomconfig import DEFAULT_MEDIA_IN, DEFAULT_MEDIA_OUT, DEFAULT_ROLES
from owt.client import OwtApiError
from streamengine.models import Domain

# The reference server's stored document for POST /v1/rooms {"name": "r"} (docs/management-api.md).
REFERENCE_DEFAULT_ROOM = {
    "name": "r",
    "inputLimit": -1,
    "participantLimit": -1,
    "selectActiveAudio": False,
    "enableBandwidthAdaptation": False,
    "roles": [
        {"role": "presenter", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
        {"role": "viewer", "publish": {"audio": False, "video": False}, "subscribe": {"audio": True, "video": True}},
        {"role": "audio_only_presenter", "publish": {"audio": True, "video": False}, "subscribe": {"audio": True, "video": False}},
        {"role": "video_only_viewer", "publish": {"audio": False, "video": False}, "subscribe": {"audio": False, "video": True}},
        {"role": "sip", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
    ],
    "views": [{
        "label": "common",
        "audio": {"format": {"codec": "opus", "sampleRate": 48000, "channelNum": 2}, "vad": True},
        "video": {
            "format": {"codec": "vp8"},
            "parameters": {"resolution": {"width": 640, "height": 480}, "framerate": 24, "keyFrameInterval": 100},
            "maxInput": 16,
            "motionFactor": 0.8,
            "bgColor": {"r": 0, "g": 0, "b": 0},
            "keepActiveInputPrimary": False,
            "layout": {"fitPolicy": "letterbox", "templates": {"base": "fluid", "custom": []}},
        },
    }],
    "mediaIn": {
        "audio": [
            {"codec": "opus", "sampleRate": 48000, "channelNum": 2},
            {"codec": "isac", "sampleRate": 16000},
            {"codec": "isac", "sampleRate": 32000},
            {"codec": "g722", "sampleRate": 16000, "channelNum": 1},
            {"codec": "pcma"}, {"codec": "pcmu"}, {"codec": "aac"}, {"codec": "ac3"}, {"codec": "nellymoser"}, {"codec": "ilbc"},
        ],
        "video": [{"codec": "h264"}, {"codec": "vp8"}, {"codec": "vp9"}],
    },
    "mediaOut": {
        "audio": [
            {"codec": "opus", "sampleRate": 48000, "channelNum": 2}, {"codec": "isac", "sampleRate": 16000},
            {"codec": "isac", "sampleRate": 32000}, {"codec": "g722", "sampleRate": 16000, "channelNum": 1},
            {"codec": "pcma"}, {"codec": "pcmu"}, {"codec": "aac", "sampleRate": 48000, "channelNum": 2},
            {"codec": "ac3"}, {"codec": "nellymoser"}, {"codec": "ilbc"},
        ],
        "video": {
            "format": [{"codec": "vp8"}, {"codec": "h264", "profile": "CB"}, {"codec": "h264", "profile": "B"}, {"codec": "vp9"}],
            "parameters": {
                "resolution": ["x3/4", "x2/3", "x1/2", "x1/3", "x1/4", "hd1080p", "hd720p", "svga", "vga", "qvga", "cif"],
                "framerate": [6, 12, 15, 24, 30, 48, 60],
                "bitrate": ["x0.8", "x0.6", "x0.4", "x0.2"],
                "keyFrameInterval": [100, 30, 5, 2, 1],
            },
        },
    },
    "transcoding": {
        "audio": True,
        "video": {"format": True, "parameters": {"resolution": True, "framerate": True, "bitrate": True, "keyFrameInterval": True}},
    },
    "notifying": {"participantActivities": True, "streamChange": True},
}  # fmt: skip


def without_ids(room):
    return {key: value for key, value in room.items() if key not in {"_id", "id"}}


def test_minimal_room_gets_reference_defaults(api):
    room = api.create_room("r")
    assert len(room["_id"]) == 24 and room["id"] == room["_id"]
    assert without_ids(room) == REFERENCE_DEFAULT_ROOM
    fetched = without_ids(api.get_room(room["_id"]))
    assert fetched == REFERENCE_DEFAULT_ROOM
    # Same key order as the reference document, whatever the database (jsonb reorders keys).
    assert json.dumps(fetched) == json.dumps(REFERENCE_DEFAULT_ROOM)
    stored = Room.objects.get(id=room["_id"])
    assert stored.service_id == api.service_id
    # The engine's copy: same id, owned by the service, only what the engine reads.
    domain = Domain.objects.get(id=room["_id"])
    assert domain.owner == api.service_id
    assert domain.config["roles"] == REFERENCE_DEFAULT_ROOM["roles"]
    assert domain.config["views"] == REFERENCE_DEFAULT_ROOM["views"]  # its mixers render them


def test_falsy_top_level_values_use_defaults_and_empty_views_are_kept(api):
    room = api.create_room("r", {"roles": None, "mediaIn": False, "mediaOut": 0, "views": []})
    assert room["roles"] == DEFAULT_ROLES and room["mediaIn"] == DEFAULT_MEDIA_IN
    assert room["mediaOut"] == DEFAULT_MEDIA_OUT
    assert room["views"] == []


def test_supplied_values_are_not_merged_with_defaults(api):
    audio = [{"codec": "opus", "sampleRate": 48000, "channelNum": 2}]
    room = api.create_room("r", {"mediaOut": {"audio": audio}, "views": [{"video": False}], "unknownKey": 1})
    assert room["mediaOut"] == {
        "audio": audio,
        "video": {
            "format": [],
            "parameters": {"resolution": [], "framerate": [], "bitrate": [], "keyFrameInterval": []},
        },
    }
    assert room["views"] == [{"label": "common", "audio": REFERENCE_DEFAULT_ROOM["views"][0]["audio"], "video": False}]
    assert "unknownKey" not in room


def test_nested_leaf_defaults_and_h264_profile(api):
    room = api.create_room(
        "r",
        {
            "transcoding": {"audio": False},
            "views": [
                {"label": "hd", "video": {"format": {"codec": "h264"}, "parameters": {"resolution": {"width": 1280}}}}
            ],
        },
    )
    assert room["transcoding"]["audio"] is False and room["transcoding"]["video"]["format"] is True
    video = room["views"][0]["video"]
    assert video["format"] == {"codec": "h264", "profile": "CB"}
    assert video["parameters"]["resolution"] == {"width": 1280, "height": 480}
    assert video["maxInput"] == 16 and video["layout"]["templates"]["base"] == "fluid"


def view_video(**video):
    return {"views": [{"video": video}]}


def custom(*regions, base="fluid"):
    return view_video(layout={"templates": {"base": base, "custom": [{"region": list(regions)}]}})


def region(rid="1", **area):
    return {"id": rid, "area": {"left": 0, "top": 0, "width": 1, "height": 1, **area}}


INVALID = [
    (None, {"name": ""}, "name"),
    ("options", "not an object", "options"),
    ("maxInput high", view_video(maxInput=257), "views[0].video.maxInput"),
    ("maxInput low", view_video(maxInput=0), "views[0].video.maxInput"),
    ("framerate", view_video(parameters={"framerate": 25}), "views[0].video.parameters.framerate"),
    ("framerate as string", view_video(parameters={"framerate": "24"}), "views[0].video.parameters.framerate"),
    ("keyFrameInterval", view_video(parameters={"keyFrameInterval": 10}), "views[0].video.parameters.keyFrameInterval"),
    ("bitrate", view_video(parameters={"bitrate": -5}), "views[0].video.parameters.bitrate"),
    ("resolution", view_video(parameters={"resolution": {"width": 0, "height": 480}}), "views[0].video.parameters.resolution.width"),
    ("bgColor", view_video(bgColor={"r": 256}), "views[0].video.bgColor.r"),
    ("bgColor negative", view_video(bgColor={"g": -1}), "views[0].video.bgColor.g"),
    ("fitPolicy", view_video(layout={"fitPolicy": "stretch"}), "views[0].video.layout.fitPolicy"),
    ("base", view_video(layout={"templates": {"base": "grid"}}), "views[0].video.layout.templates.base"),
    ("region id", custom({"area": region()["area"]}), "views[0].video.layout.templates.custom[0].region[0].id"),
    ("region area", custom(region(width="one")), "views[0].video.layout.templates.custom[0].region[0].area.width"),
    ("region area range", custom(region(left="3/2")), "views[0].video.layout.templates.custom[0].region[0].area.left"),
    ("region outside", custom(region(left="1/2", width="2/3")), "views[0].video.layout.templates.custom[0].region[0].area"),
    ("region missing area", custom({"id": "1", "area": {"left": 0}}), "views[0].video.layout.templates.custom[0].region[0].area.top"),
    ("region ids unique", custom(region("1"), region("1")), "views[0].video.layout.templates.custom[0].region"),
    ("region shape", custom({**region(), "shape": "circle"}), "views[0].video.layout.templates.custom[0].region[0].shape"),
    ("audio not in mediaOut", {"views": [{"audio": {"format": {"codec": "pcmu", "sampleRate": 8000}}}]}, "views[0].audio.format"),
    ("video not in mediaOut", {"views": [{"video": {"format": {"codec": "h265"}}}]}, "views[0].video.format"),
    ("labels unique", {"views": [{}, {}]}, "views"),
    ("inputLimit type", {"inputLimit": "abc"}, "inputLimit"),
    ("participantLimit range", {"participantLimit": -2}, "participantLimit"),
    ("notifying type", {"notifying": {"streamChange": "yes"}}, "notifying.streamChange"),
    ("role name", {"roles": [{"publish": {}}]}, "roles[0].role"),
    ("roles unique", {"roles": [{"role": "a"}, {"role": "a"}]}, "roles"),
    ("mediaOut resolution", {"mediaOut": {"video": {"parameters": {"resolution": ["x5/4"]}}}}, "mediaOut.video.parameters.resolution[0]"),
    ("mediaOut bitrate", {"mediaOut": {"video": {"parameters": {"bitrate": ["fast"]}}}}, "mediaOut.video.parameters.bitrate[0]"),
    ("mediaOut framerate", {"mediaOut": {"video": {"parameters": {"framerate": [7]}}}}, "mediaOut.video.parameters.framerate[0]"),
    ("mediaIn codec", {"mediaIn": {"audio": [{"sampleRate": 48000}]}}, "mediaIn.audio[0].codec"),
]  # fmt: skip


@pytest.mark.parametrize(("label", "options", "field"), INVALID, ids=[item[2] + ":" + str(item[0]) for item in INVALID])
def test_validation_rules_on_create_and_update(api, label, options, field):
    if label is None:  # the name itself
        with pytest.raises(OwtApiError) as info:
            api.request("POST", "/v1/rooms", json=options)
    else:
        with pytest.raises(OwtApiError) as info:
            api.create_room("r", options)
    assert (info.value.status, info.value.code) == (400, 1301)
    assert info.value.message.startswith(field + ":"), info.value.message
    if label in (None, "options"):
        return
    # PUT and PATCH answer alike and leave the room unchanged.
    room = api.create_room("ok")
    for method in ("PUT", "PATCH"):
        with pytest.raises(OwtApiError) as info:
            api.request(method, f"/v1/rooms/{room['_id']}", json=options)
        assert (info.value.status, info.value.code) == (400, 1301)
        assert info.value.message.startswith(field + ":"), info.value.message
    assert api.get_room(room["_id"]) == room


def test_valid_custom_layout_is_stored_as_strings(api):
    regions = [
        {"id": "1", "area": {"left": 0, "top": 0, "width": "2/4", "height": 1}},
        {"id": "2", "area": {"left": 0.5, "top": 0, "width": "1/2", "height": "1"}},
    ]
    room = api.create_room("r", custom(*regions))
    stored = room["views"][0]["video"]["layout"]["templates"]["custom"][0]["region"]
    assert stored[0] == {
        "id": "1",
        "shape": "rectangle",
        "area": {"left": "0", "top": "0", "width": "2/4", "height": "1"},
    }
    assert stored[1]["area"]["left"] == "0.5"


def test_put_is_a_shallow_top_level_merge(api):
    room = api.create_room("r", {"participantLimit": 5, "views": [{"label": "a"}, {"label": "b"}]})
    updated = api.update_room(
        room["_id"], {"name": "renamed", "views": [{"label": "c", "video": {"maxInput": 4}}], "inputLimit": None}
    )
    assert updated["name"] == "renamed"
    assert updated["participantLimit"] == 5  # absent key kept
    assert [v["label"] for v in updated["views"]] == ["c"]  # present key replaces the sub-tree
    assert updated["views"][0]["video"]["bgColor"] == {"r": 0, "g": 0, "b": 0}  # defaults re-applied inside
    assert api.get_room(room["_id"]) == updated
    assert Domain.objects.get(id=room["_id"]).config["views"][0]["label"] == "c"
    # PUT of transcoding replaces the whole object: unspecified leaves go back to defaults.
    api.patch_room(room["_id"], {"transcoding": {"audio": False, "video": {"format": False}}})
    updated = api.update_room(room["_id"], {"transcoding": {"audio": False}})
    assert updated["transcoding"]["video"]["format"] is True


def test_patch_is_a_json_merge_patch(api):
    room = api.create_room("r", {"participantLimit": 5})
    patched = api.patch_room(room["_id"], {"notifying": {"streamChange": False}, "participantLimit": None})
    assert patched["notifying"] == {"participantActivities": True, "streamChange": False}
    assert patched["participantLimit"] == -1  # null removed the key: default again
    assert patched["views"] == room["views"]
    patched = api.patch_room(room["_id"], {"views": [{"video": {"maxInput": 4}}]})  # arrays replace
    assert patched["views"][0]["video"]["maxInput"] == 4


def test_update_body_must_be_an_object(api):
    room = api.create_room("r")
    for method in ("PUT", "PATCH"):
        with pytest.raises(OwtApiError) as info:
            api.request(method, f"/v1/rooms/{room['_id']}", json=[1, 2])
        assert (info.value.status, info.value.code) == (400, 1301)


def test_sip_password_encrypted_at_rest(api):
    sip = {"sipServer": "sip.example.org", "username": "u", "password": "s3cret"}
    room = api.create_room("r", {"sip": sip})
    assert room["sip"] == sip and api.get_room(room["_id"])["sip"] == sip
    stored = Room.objects.get(id=room["_id"]).config["sip"]["password"]
    assert "s3cret" not in str(stored)
    assert api.patch_room(room["_id"], {"participantLimit": 3})["sip"] == sip


def test_pagination(api):
    ids = [api.create_room(f"room{i}")["_id"] for i in range(5)]
    assert [r["_id"] for r in api.list_rooms()] == ids
    assert [r["_id"] for r in api.list_rooms(per_page=2)] == ids[:2]
    assert [r["_id"] for r in api.list_rooms(page=1, per_page=2)] == ids[:2]
    assert [r["_id"] for r in api.list_rooms(page=3, per_page=2)] == ids[4:]
    assert api.list_rooms(page=4, per_page=2) == []
    assert [r["_id"] for r in api.list_rooms(page=2)] == ids  # page without per_page: everything
    assert [r["_id"] for r in api.list_rooms(page=0, per_page=2)] == ids[:2]
    assert [r["_id"] for r in api.list_rooms(per_page=0)] == ids
    assert [r["_id"] for r in api.list_rooms(per_page=100)] == ids
    with pytest.raises(OwtApiError) as info:
        api.list_rooms(per_page="ten")
    assert (info.value.status, info.value.code) == (400, 1301) and "per_page" in info.value.message


def test_rooms_are_scoped_to_their_service(api, other_api, superapi):
    room = api.create_room("mine")
    other_api.create_room("theirs")
    assert [r["name"] for r in api.list_rooms()] == ["mine"]
    assert superapi.list_rooms() == []  # even the super service sees only its own rooms
    for call in (
        lambda: other_api.get_room(room["_id"]),
        lambda: other_api.update_room(room["_id"], {"name": "x"}),
        lambda: other_api.patch_room(room["_id"], {"name": "x"}),
        lambda: other_api.delete_room(room["_id"]),
        lambda: other_api.create_token(room["_id"], "u", "presenter"),
        lambda: api.get_room("0" * 24),
        lambda: api.get_room("not-an-id"),
    ):
        with pytest.raises(OwtApiError) as info:
            call()
        assert (info.value.status, info.value.code, info.value.message) == (404, 1003, "Room not found")
    assert api.get_room(room["_id"])["name"] == "mine"


def test_delete_room_removes_engine_domain(api):
    room = api.create_room("r")
    assert api.delete_room(room["_id"]) == "Room deleted"
    assert not Room.objects.filter(id=room["_id"]).exists()
    assert not Domain.objects.filter(id=room["_id"]).exists()
    with pytest.raises(OwtApiError) as info:
        api.delete_room(room["_id"])
    assert info.value.code == 1003


@pytest.mark.parametrize("path", ["/v1/rooms", "/v1/rooms/", "/v1.1/rooms", "/v1.1/rooms/"])
def test_versions_and_trailing_slashes(api, path):
    created = api.request("POST", path, json={"name": "r"})
    assert api.request("GET", path)[0]["_id"] == created["_id"]
    detail = f"{path.rstrip('/')}/{created['_id']}"
    assert api.request("GET", detail + "/")["_id"] == created["_id"]
    assert api.request("PATCH", detail + "/", json={"participantLimit": 2})["participantLimit"] == 2
    assert isinstance(api.request("POST", detail + "/tokens/", json={"user": "u", "role": "viewer"}), str)


def test_bad_bodies(api, http):
    for body, content_type in (("{not json", "application/json"), ("name=r", "application/x-www-form-urlencoded")):
        response = http.post(
            "/v1/rooms", content=body, headers={"Authorization": api.authorization(), "Content-Type": content_type}
        )
        assert response.status_code in (400, 415)
        assert response.json()["error"]["code"] == 1301
    with pytest.raises(OwtApiError) as info:
        api.request("POST", "/v1/rooms", json=["r"])
    assert (info.value.status, info.value.code) == (400, 1301)
    huge = {"name": "r", "options": {"roles": [{"role": "x" * 200}] * 20000}}
    with pytest.raises(OwtApiError) as info:
        api.request("POST", "/v1/rooms", json=huge)
    assert (info.value.status, info.value.code) == (413, 1301)


def test_unknown_route_under_v1_is_owt_404(api, http):
    response = http.get("/v1/nothing-here", headers={"Authorization": api.authorization()})
    assert response.status_code == 404 and response.json()["error"]["code"] == 1001


def test_patch_with_rfc6902_operations_as_official_clients_send(api):
    room = api.create_room("r", {"sip": {"sipServer": "s", "username": "u", "password": "p"}})
    patched = api.patch_room(
        room["_id"],
        [
            {"op": "replace", "path": "/participantLimit", "value": 10},
            {"op": "replace", "path": "views/0/video/maxInput", "value": 4},  # old docs: no leading slash
            {"op": "add", "path": "/roles/-", "value": {"role": "guest"}},
            {"op": "remove", "path": "/sip"},
            {"op": "copy", "from": "/views/0", "path": "/views/1"},
            {"op": "replace", "path": "/views/1/label", "value": "copy"},
            {"op": "test", "path": "/name", "value": "r"},
        ],
    )
    assert patched["participantLimit"] == 10
    assert [v["video"]["maxInput"] for v in patched["views"]] == [4, 4]
    assert [v["label"] for v in patched["views"]] == ["common", "copy"]
    assert patched["roles"][-1] == {
        "role": "guest",
        "publish": {"audio": False, "video": False},
        "subscribe": {"audio": False, "video": False},
    }
    assert "sip" not in patched
    assert api.get_room(room["_id"]) == patched


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ([{"op": "test", "path": "/name", "value": "other"}], "patch[0]: test failed"),
        ([{"op": "replace", "path": "/nothing/here", "value": 1}], "patch[0]: /nothing/here does not exist"),
        ([{"op": "remove", "path": "/views/5"}], "patch[0]: array index 5 is out of range"),
        (
            [{"op": "replace", "path": "/participantLimit", "value": 1}, {"op": "frob", "path": "/"}],
            "patch[1]: unknown op",
        ),
        ([{"op": "replace", "path": "/views/0/video/maxInput", "value": 999}], "views[0].video.maxInput:"),
        ([{"op": "replace", "path": "", "value": [1]}], "The patched room must be a JSON object"),
        ([1, 2], "patch[0]: an operation is an object"),
    ],
)
def test_patch_rfc6902_errors(api, operations, message):
    room = api.create_room("r")
    with pytest.raises(OwtApiError) as info:
        api.patch_room(room["_id"], operations)
    assert (info.value.status, info.value.code) == (400, 1301)
    assert info.value.message.startswith(message), info.value.message
    assert api.get_room(room["_id"]) == room
