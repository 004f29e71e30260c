"""Bounds of the room document and the token preference: an amplifying request is refused
before anything is stored, and the engine's copy of the largest room allowed stays small."""

from __future__ import annotations

import json

import pytest

from conference import roomconfig, services
from conference.models import Room
from owt.client import OwtApiError
from streamengine.models import Domain


def region(rid: int) -> dict:
    return {"id": str(rid), "area": {"left": 0, "top": 0, "width": 1, "height": 1}}


def views(count: int, **video) -> list[dict]:
    return [{"label": f"v{index}", "video": {"maxInput": 256, **video}} for index in range(count)]


def layout(custom: list[dict]) -> dict:
    return {"views": [{"video": {"layout": {"templates": {"base": "fluid", "custom": custom}}}}]}


def refused(api, options: dict) -> OwtApiError:
    with pytest.raises(OwtApiError) as info:
        api.create_room("r", options)
    assert (info.value.status, info.value.code) == (400, 1301)
    return info.value


def test_the_amplifying_request_is_refused_and_nothing_is_stored(api):
    # The 9 KB request: 200 views of maxInput 256 (it wrote 33.6 MB to the engine).
    error = refused(api, {"views": views(200)})
    assert error.message == f"views: Ensure this field has no more than {roomconfig.MAX_VIEWS} elements."
    assert not Room.objects.exists() and not Domain.objects.exists()


LONG = "x" * (roomconfig.MAX_TOKEN_LENGTH + 1)
TOO_MANY = [
    ("roles", {"roles": [{"role": f"r{n}"} for n in range(roomconfig.MAX_ROLES + 1)]}),
    (
        "views[0].video.layout.templates.custom",
        layout([{"region": [region(1)]}] * (roomconfig.MAX_CUSTOM_TEMPLATES + 1)),
    ),
    (
        "views[0].video.layout.templates.custom[0].region",
        layout([{"region": [region(n) for n in range(roomconfig.MAX_REGIONS + 1)]}]),
    ),
    ("mediaIn.audio", {"mediaIn": {"audio": [{"codec": "opus"}] * (roomconfig.MAX_FORMATS + 1)}}),
    ("mediaOut.video.format", {"mediaOut": {"video": {"format": [{"codec": "vp8"}] * (roomconfig.MAX_FORMATS + 1)}}}),
    (
        "mediaOut.video.parameters.framerate",
        {"mediaOut": {"video": {"parameters": {"framerate": [24] * (roomconfig.MAX_FORMATS + 1)}}}},
    ),
]
OUT_OF_RANGE = [
    ("participantLimit", {"participantLimit": roomconfig.MAX_LIMIT + 1}),
    ("inputLimit", {"inputLimit": roomconfig.MAX_LIMIT + 1}),
    ("views[0].video.maxInput", {"views": views(1, maxInput=roomconfig.MAX_INPUT + 1)}),
    ("views[0].video.motionFactor", {"views": views(1, motionFactor=1e300)}),
    ("views[0].video.parameters.bitrate", {"views": views(1, parameters={"bitrate": 1e300})}),
    ("views[0].audio.format.sampleRate", {"views": [{"audio": {"format": {"codec": "opus", "sampleRate": 10**12}}}]}),
    ("views[0].label", {"views": [{"label": LONG}]}),
    ("views[0].video.format.codec", {"views": [{"video": {"format": {"codec": LONG}}}]}),
    ("views[0].video.layout.setRegionEffect", {"views": [{"video": {"layout": {"setRegionEffect": LONG}}}]}),
    ("views[0].video.layout.templates.custom[0].region[0].id", layout([{"region": [{**region(1), "id": LONG}]}])),
    ("mediaIn.video[0].profile", {"mediaIn": {"video": [{"codec": "h264", "profile": LONG}]}}),
    ("roles[0].role", {"roles": [{"role": "r" * (roomconfig.MAX_NAME_LENGTH + 1)}]}),
    ("sip.password", {"sip": {"password": "p" * (roomconfig.MAX_NAME_LENGTH + 1)}}),
]  # fmt: skip


@pytest.mark.parametrize(("field", "options"), TOO_MANY + OUT_OF_RANGE, ids=[f for f, _ in TOO_MANY + OUT_OF_RANGE])
def test_each_list_number_and_string_is_bounded(api, field, options):
    assert refused(api, options).message.startswith(field + ":")
    room = api.create_room("ok")
    with pytest.raises(OwtApiError) as info:
        api.patch_room(room["_id"], options)
    assert info.value.message.startswith(field + ":")


def test_the_largest_room_allowed_leaves_a_small_engine_copy(api):
    custom = [{"region": [region(n) for n in range(size)]} for size in range(1, roomconfig.MAX_CUSTOM_TEMPLATES + 1)]
    largest = views(roomconfig.MAX_VIEWS, layout={"templates": {"base": "lecture", "custom": custom}})
    room = api.create_room("r", {"views": largest})
    config = Domain.objects.get(id=room["_id"]).config
    stored = Room.objects.get(id=room["_id"]).config
    assert len(stored["views"][0]["video"]["layout"]["templates"]["custom"]) == roomconfig.MAX_CUSTOM_TEMPLATES
    # The engine's mixers get the views as configured; the templates are expanded by each
    # mixer, never stored expanded (that made 33 MB of a 9 KB request).
    assert config["views"] == stored["views"]
    assert len(json.dumps(config)) < 1.5 * len(json.dumps(stored))


@pytest.mark.parametrize(
    "preference",
    [
        {f"k{n}": "v" for n in range(services.PREFERENCE_MAX_KEYS + 1)},
        {"isp": "i" * (roomconfig.MAX_NAME_LENGTH + 1)},
        {"k" * (roomconfig.MAX_TOKEN_LENGTH + 1): "v"},
    ],
    ids=["keys", "value", "key"],
)
def test_token_preference_is_bounded(api, preference):
    room = api.create_room("r")
    with pytest.raises(OwtApiError) as info:
        api.create_token(room["_id"], "alice", "presenter", preference)
    assert (info.value.status, info.value.code) == (400, 1301)
    assert info.value.message.startswith("preference:")
    assert api.create_token(room["_id"], "alice", "presenter", {"isp": "i" * 255, "region": "eu"})
