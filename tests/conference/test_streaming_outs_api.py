"""``/v1/rooms/{r}/streaming-outs``: validation, defaults, PATCH, the type check on DELETE
(the job itself: tests/streamengine/test_streaming_outs.py)."""

from __future__ import annotations

import pytest

from streamengine.models import MediaJob
from tests.streamengine import live_state as ls


@pytest.fixture
def setup(db, django_capture_on_commit_callbacks):
    service, _, client = ls.tenant("sout")
    room = ls.room(service)
    alice = ls.participant(room.id)
    stream = ls.publication(alice)
    return {"api": client, "room": room, "stream": stream, "path": f"/v1/rooms/{room.id}/streaming-outs"}


def media(stream: str, **video) -> dict:
    return {"audio": {"from": stream}, "video": {"from": stream, **video}}


def test_rtmp_renders_the_abstract_with_url_and_aac_h264(setup):
    stream = setup["stream"].id
    url = "rtmp://127.0.0.1:1935/live/key"
    body = {"url": url, "media": media(stream, parameters={"resolution": {"width": 320, "height": 240}})}
    response = setup["api"].post(setup["path"], body)
    assert response.status_code == 200, response.json()
    out = response.json()
    job = MediaJob.objects.get(id=out["id"])
    assert (job.kind, job.state, job.spec["protocol"]) == ("streaming-out", "pending", "rtmp")
    assert out["url"] == url and out["protocol"] == "rtmp" and out["parameters"] == {}
    assert out["media"]["audio"]["format"] == {"codec": "aac", "sampleRate": 48000, "channelNum": 2}
    assert out["media"]["video"]["format"] == {"codec": "h264", "profile": "CB"}
    assert out["media"]["video"]["parameters"] == {"resolution": {"width": 320, "height": 240}}
    listed = setup["api"].get(f"/v1.1/rooms/{setup['room'].id}/streaming-outs").json()
    assert [s["id"] for s in listed] == [out["id"]]


def test_local_hls_gets_owt_defaults_and_a_portal_url(setup):
    response = setup["api"].post(setup["path"], {"protocol": "hls", "media": media(setup["stream"].id)})
    assert response.status_code == 200, response.json()
    out = response.json()
    assert out["parameters"] == {"method": "PUT", "hlsTime": 2, "hlsListSize": 5}
    assert out["url"] == f"http://testserver/media/streaming/{setup['room'].id}/{out['id']}/index.m3u8"


@pytest.mark.parametrize(
    ("url", "protocol"),
    [("rtsp://h/x", "rtsp"), ("https://cdn.example/live/a.m3u8", "hls"), ("http://cdn.example/a.mpd", "dash")],
)
def test_protocol_is_guessed_from_the_url(setup, url, protocol):
    response = setup["api"].post(setup["path"], {"url": url, "media": media(setup["stream"].id)})
    assert response.status_code == 200, response.json()
    assert response.json()["protocol"] == protocol


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": "ftp://x/y"}, "protocol"),
        ({"protocol": "rtmp"}, "url"),
        ({"protocol": "hls", "url": "rtmp://x/y"}, "url"),
        ({"protocol": "hls", "parameters": {"hlsTime": 0}}, "hlsTime"),
        ({"protocol": "rtmp", "url": "rtmp://x/y", "parameters": {"hlsTime": 2}}, "parameters"),
        (
            {"url": "rtmp://x/y", "media": {"audio": {"from": "S", "format": {"codec": "opus"}}, "video": False}},
            "codec",
        ),
        (
            {"url": "rtmp://x/y", "media": {"audio": False, "video": {"from": "S", "parameters": {"bitrate": "y"}}}},
            "bitrate",
        ),
        ({"url": "rtmp://x/y", "media": {"audio": False, "video": {"from": "S", "parameters": {"fps": 1}}}}, "fps"),
    ],
)
def test_bad_requests_name_the_field(setup, body, message):
    body = {"media": media(setup["stream"].id), **body}
    body["media"] = {k: ({**v, "from": setup["stream"].id} if v else v) for k, v in body["media"].items()}
    response = setup["api"].post(setup["path"], body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == 1301 and message in error["message"], error
    assert not MediaJob.objects.exists()


def test_patch_video_parameters_and_sources(setup):
    stream = setup["stream"].id
    created = setup["api"].post(setup["path"], {"url": "rtmp://h/a", "media": media(stream)}).json()
    path = f"{setup['path']}/{created['id']}"
    patched = setup["api"].patch(
        path,
        [
            {"op": "replace", "path": "/media/video/parameters/resolution", "value": {"width": 640, "height": 360}},
            {"op": "replace", "path": "/media/video/parameters/bitrate", "value": "x0.8"},
            {"op": "replace", "path": "/media/video/parameters/keyFrameInterval", "value": 1},
            {"op": "replace", "path": "/media/audio/from", "value": stream},
        ],
    )
    assert patched.status_code == 200, patched.json()
    assert patched.json()["media"]["video"]["parameters"] == {
        "resolution": {"width": 640, "height": 360},
        "bitrate": "x0.8",
        "keyFrameInterval": 1.0,
    }
    refused = setup["api"].patch(path, [{"op": "replace", "path": "/media/video/parameters/framerate", "value": 500}])
    assert refused.status_code == 400 and "framerate" in refused.json()["error"]["message"]


def test_delete_checks_the_type(setup):
    stream = setup["stream"].id
    room = setup["room"].id
    recording = (
        setup["api"].post(f"/v1/rooms/{room}/recordings", {"media": {"audio": False, "video": {"from": stream}}}).json()
    )
    refused = setup["api"].delete(f"{setup['path']}/{recording['id']}")
    assert refused.status_code == 400 and refused.json()["error"]["message"] == "Delete type not match"
    out = setup["api"].post(setup["path"], {"url": "rtmp://h/a", "media": media(stream)}).json()
    assert setup["api"].delete(f"/v1/rooms/{room}/recordings/{out['id']}").status_code == 400
    assert setup["api"].delete(f"{setup['path']}/{out['id']}").status_code == 200
    assert MediaJob.objects.get(id=out["id"]).state == "finished"  # it never started
    assert setup["api"].get(f"{setup['path']}/unknown").status_code == 404
