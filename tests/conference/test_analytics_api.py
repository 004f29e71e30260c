"""``/v1/rooms/{r}/analytics``: validation, tenancy and the abstract (the job itself: test_analytics_job.py)."""

from __future__ import annotations

import pytest

from streamengine.media.analytics.brightness import BrightnessMeter
from streamengine.media.analytics.motion import MotionDetector
from streamengine.models import MediaJob
from tests.streamengine import live_state as ls


@pytest.fixture
def setup(db, django_capture_on_commit_callbacks):
    service, client, room, stream = ls.streaming_room("analytics")
    return {"api": client, "room": room, "stream": stream, "service": service}


def post(setup, body, version="v1"):
    return setup["api"].post(f"/{version}/rooms/{setup['room'].id}/analytics", body)


def test_create_renders_the_spec_form_and_a_pending_job(setup):
    stream = setup["stream"].id
    response = post(setup, {"algorithm": "motion", "media": {"video": {"from": stream}, "audio": {"from": stream}}})
    assert response.status_code == 200, response.json()
    body = response.json()
    job = MediaJob.objects.get(id=body["id"])
    assert (job.kind, job.state, job.spec["media"]["audio"]) == ("analytics", "pending", False)  # audio ignored
    assert body["analytics"] == {"algorithm": MotionDetector.id}
    assert body["media"] == {"format": {"codec": "vp8"}, "from": stream}
    assert body["state"] == "pending"
    by_id = {"algorithm": BrightnessMeter.id, "media": {"video": {"from": stream, "format": {"codec": "h264"}}}}
    second = post(setup, by_id, version="v1.1").json()
    assert second["media"]["format"] == {"codec": "h264"}
    listed = setup["api"].get(f"/v1.1/rooms/{setup['room'].id}/analytics").json()
    assert [a["id"] for a in listed] == [body["id"], second["id"]]
    detail = setup["api"].get(f"/v1/rooms/{setup['room'].id}/analytics/{body['id']}")
    assert detail.status_code == 200 and detail.json()["analytics"] == body["analytics"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"algorithm": "nope", "media": {"video": {"from": "STREAM"}}}, "unknown algorithm 'nope'; known: "),
        ({"media": {"video": {"from": "STREAM"}}}, "algorithm"),
        ({"algorithm": "motion", "media": {"audio": {"from": "STREAM"}}}, "video"),
        ({"algorithm": "motion", "media": {"video": {}}}, "from"),
        ({"algorithm": "motion", "media": {"video": False}}, "video"),
        ({"algorithm": "motion", "media": {"video": {"from": "nope"}}}, "no video in stream 'nope'"),
        ({"algorithm": "motion", "media": {"video": {"from": "STREAM", "format": {"codec": "vp9"}}}}, "codec"),
        ({"algorithm": "motion", "media": {"video": {"from": "STREAM"}}, "extra": 1}, "extra"),
        ({"algorithm": 7, "media": {"video": {"from": "STREAM"}}}, "algorithm"),
        ([], "Body must be an object"),
    ],
)
def test_bad_requests_are_400_naming_the_field(setup, body, message):
    video = body.get("media", {}).get("video") if isinstance(body, dict) else None
    if isinstance(video, dict) and video.get("from") == "STREAM":
        video["from"] = setup["stream"].id
    response = post(setup, body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == 1301 and message in error["message"], error
    assert not MediaJob.objects.exists()


def test_an_unknown_algorithm_lists_the_known_ids_and_aliases(setup):
    error = post(setup, {"algorithm": "faces", "media": {"video": {"from": setup["stream"].id}}}).json()["error"]
    assert f"{MotionDetector.id} (motion)" in error["message"]
    assert f"{BrightnessMeter.id} (brightness, scene-change)" in error["message"]


def test_another_rooms_stream_cannot_be_analysed(setup):
    other_room = ls.room(setup["service"])
    foreign = ls.publication(ls.participant(other_room.id))
    response = post(setup, {"algorithm": "motion", "media": {"video": {"from": foreign.id}}})
    assert response.status_code == 400 and f"no video in stream '{foreign.id}'" in response.json()["error"]["message"]


def test_delete_stops_and_unknown_ids_are_404(setup):
    created = post(setup, {"algorithm": "motion", "media": {"video": {"from": setup["stream"].id}}}).json()
    base = f"/v1/rooms/{setup['room'].id}/analytics"
    missing = setup["api"].delete(f"{base}/123456")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Analytics not found"
    assert setup["api"].get(f"{base}/123456").status_code == 404
    assert setup["api"].patch(f"{base}/{created['id']}", []).status_code == 405  # OWT has no PATCH route
    assert setup["api"].delete(f"{base}/{created['id']}").status_code == 200
    assert MediaJob.objects.get(id=created["id"]).state == "finished"  # it never started


def test_a_recording_id_is_not_an_analytics(setup):
    media = {"audio": False, "video": {"from": setup["stream"].id}}
    recording = setup["api"].post(f"/v1/rooms/{setup['room'].id}/recordings", {"media": media}).json()
    refused = setup["api"].delete(f"/v1/rooms/{setup['room'].id}/analytics/{recording['id']}")
    assert refused.status_code == 400 and refused.json()["error"]["message"] == "Delete type not match"


@pytest.mark.parametrize("through_own_room", [False, True])
def test_another_tenants_analytics_is_not_found(setup, through_own_room):
    created = post(setup, {"algorithm": "motion", "media": {"video": {"from": setup["stream"].id}}}).json()
    other_service, _, other = ls.tenant("other")
    other_room = ls.room(other_service)
    room = other_room.id if through_own_room else setup["room"].id
    path = f"/v1/rooms/{room}/analytics/{created['id']}"
    assert (other.get(path).status_code, other.delete(path).status_code) == (404, 404)
    assert other.get(f"/v1/rooms/{other_room.id}/analytics").json() == []
    assert MediaJob.objects.get(id=created["id"]).state == "pending"
