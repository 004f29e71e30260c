"""Stream-engine ``/processors`` (spec 5.4): a view's mixer as a processor, with validation and tenancy."""

from __future__ import annotations

import pytest

from streamengine.models import Domain, MediaJob
from tests.streamengine import live_state as ls

BASE = "/v1.1/stream-engine"


@pytest.fixture
def world(db, django_capture_on_commit_callbacks):
    service, client, room, stream = ls.streaming_room("engine-processors")
    _, _, stranger = ls.tenant("someone-else")
    return {"client": client, "room": room, "stream": stream, "stranger": stranger}


def test_a_video_mixing_processor_configures_the_view_and_runs_its_mixer(world):
    client, room = world["client"], world["room"]
    mixing = {
        "view": "hd",
        "maxInput": 4,
        "bgColor": {"r": 0, "g": 0, "b": 255},
        "parameters": {"resolution": {"width": 1280, "height": 720}, "framerate": 30},
        "layout": {"fitPolicy": "crop", "templates": [{"region": [{"id": "1", "area": {
            "left": "0", "top": "0", "width": "1", "height": "1"}}]}]},
    }  # fmt: skip
    response = client.post(f"{BASE}/processors", {"type": "video", "participant": room.id, "mixing": mixing})
    assert response.status_code == 200, response.json()
    job = MediaJob.objects.get(id=response.json()["id"])
    assert (job.kind, job.spec, job.state) == ("mixing", {"view": "hd"}, "pending")
    view = next(v for v in Domain.objects.get(id=room.id).config["views"] if v["label"] == "hd")
    assert view["video"]["parameters"]["resolution"] == {"width": 1280, "height": 720}
    assert view["video"]["layout"] == {
        "fitPolicy": "crop",
        "templates": {"base": "void", "custom": mixing["layout"]["templates"]},
    }
    # The audio processor of the same view is the same job.
    audio = client.post(
        f"{BASE}/processors",
        {"type": "audio", "participant": room.id, "mixing": {"view": "hd", "vad": True}},
    )
    assert audio.json()["id"] == job.id
    listed = client.get(f"{BASE}/processors").json()
    assert listed["total"] == 1
    processor = listed["data"][0]
    assert (processor["id"], processor["type"], processor["domain"]) == (job.id, "video", room.id)
    assert processor["info"]["mixing"]["view"] == "hd" and processor["info"]["state"] == "pending"
    assert client.get(f"{BASE}/processors/{job.id}").json()["id"] == job.id
    # Another tenant sees none of it.
    assert world["stranger"].get(f"{BASE}/processors").json()["total"] == 0
    assert world["stranger"].get(f"{BASE}/processors/{job.id}").status_code == 404
    assert world["stranger"].delete(f"{BASE}/processors/{job.id}").status_code == 404
    assert client.delete(f"{BASE}/processors/{job.id}").status_code == 200
    assert MediaJob.objects.get(id=job.id).state == "finished"
    assert client.get(f"{BASE}/processors/{job.id}").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "video", "participant": "ROOM"}, "exactly one of"),
        ({"type": "video", "participant": "ROOM", "selecting": {}}, "exactly one of"),
        ({"type": "video", "participant": "ROOM", "mixing": {}}, "view"),
        ({"type": "video", "participant": "ROOM", "mixing": {"view": "v", "maxInput": 0}}, "maxInput"),
        ({"type": "video", "participant": "ROOM", "mixing": {"view": "v", "bgColor": {"r": 300}}}, "r"),
        ({"type": "video", "participant": "ROOM", "mixing": {"view": "v", "bogus": 1}}, "bogus"),
        ({"type": "audio", "participant": "ROOM", "mixing": {"view": "v", "vad": "yes"}}, "vad"),
        ({"type": "sip", "participant": "ROOM", "mixing": {"view": "v"}}, "type"),
    ],
)
def test_bad_processor_requests_are_refused_in_the_error_format(world, body, message):
    body = {**body, "participant": world["room"].id}
    response = world["client"].post(f"{BASE}/processors", body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not MediaJob.objects.exists()


def test_another_tenants_domain_is_unknown(world):
    body = {"type": "video", "participant": world["room"].id, "mixing": {"view": "common"}}
    response = world["stranger"].post(f"{BASE}/processors", body)
    assert response.status_code == 404
    assert not MediaJob.objects.exists()


def test_video_transcoding_and_analytics_processors_are_analytics_jobs(world):
    client, room, stream = world["client"], world["room"], world["stream"]
    transcoding = {"from": stream.id, "parameters": {"resolution": {"width": 320, "height": 240}}}
    response = client.post(f"{BASE}/processors", {"type": "video", "participant": room.id, "transcoding": transcoding})
    assert response.status_code == 200, response.json()
    transcoder = MediaJob.objects.get(id=response.json()["id"])
    assert transcoder.kind == "analytics" and transcoder.spec["algorithm"] == "7d3f5a2c9e1b4f608a4c2e9d1b7f3a65"
    analysis = client.post(
        f"{BASE}/processors",
        {"type": "analytics", "participant": room.id, "analytics": {"algorithm": "motion", "media": {
            "video": {"from": stream.id}}}},
    )  # fmt: skip
    assert analysis.status_code == 200, analysis.json()
    processors = {p["id"]: p for p in client.get(f"{BASE}/processors").json()["data"]}
    assert processors[transcoder.id]["type"] == "video"
    assert processors[transcoder.id]["info"]["transcoding"]["parameters"]["resolution"]["width"] == 320
    assert processors[transcoder.id]["inputs"]["video"] == [{"from": stream.id}]
    assert processors[analysis.json()["id"]]["type"] == "analytics"
    filtered = client.get(f"{BASE}/processors", {"kind": "analytics", "domain": room.id}).json()
    assert filtered["total"] == 2
    # An unknown source stream, and audio transcoding (the SFU's, per subscription), are refused.
    unknown = client.post(
        f"{BASE}/processors", {"type": "video", "participant": room.id, "transcoding": {"from": "nope"}}
    )
    assert unknown.status_code == 400
    audio = client.post(f"{BASE}/processors", {"type": "audio", "participant": room.id, "transcoding": {}})
    assert audio.status_code == 400 and "not available" in audio.json()["error"]["message"]


def test_an_audio_selecting_processor_is_a_selecting_job(world):
    client, room = world["client"], world["room"]
    body = {"type": "audio", "participant": room.id, "selecting": {"activeStreamIds": ["a", "b"]}}
    response = client.post(f"{BASE}/processors", body)
    assert response.status_code == 200, response.json()
    job = MediaJob.objects.get(id=response.json()["id"])
    assert (job.kind, job.spec) == ("audio-selecting", {"count": 2})
    processor = client.get(f"{BASE}/processors/{job.id}").json()
    assert processor["type"] == "audio" and processor["info"]["selecting"]["id"] == job.id
    default = client.post(f"{BASE}/processors", {"type": "audio", "participant": room.id, "selecting": {}})
    assert MediaJob.objects.get(id=default.json()["id"]).spec == {"count": 3}
