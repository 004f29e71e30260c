"""Stream-engine ``POST /subscriptions`` of type recording / streaming: the same media jobs as the rooms' resources."""

from __future__ import annotations

import pytest

from streamengine.models import MediaJob
from tests.streamengine import live_state as ls

BASE = "/v1.1/stream-engine"


@pytest.fixture
def world(db, django_capture_on_commit_callbacks):
    service, client, room, stream = ls.streaming_room("engine-jobs")
    return {"client": client, "room": room, "stream": stream}


def test_a_recording_subscription_is_a_recording_job(world):
    media = {"audio": False, "video": {"from": world["stream"].id}}
    body = {"type": "recording", "participant": world["room"].id, "media": media, "info": {"container": "mkv"}}
    response = world["client"].post(f"{BASE}/subscriptions", body)
    assert response.status_code == 200, response.json()
    job = MediaJob.objects.get(id=response.json()["id"])
    assert (job.kind, job.domain_id, job.spec["container"], job.state) == (
        "recording",
        world["room"].id,
        "mkv",
        "pending",
    )
    # Not running yet: nothing to show, but it can be stopped by the same id.
    assert world["client"].get(f"{BASE}/subscriptions/{job.id}").status_code == 404
    assert world["client"].delete(f"{BASE}/subscriptions/{job.id}").status_code == 200
    assert MediaJob.objects.get(id=job.id).state == "finished"


def test_a_streaming_subscription_is_a_streaming_out_job(world):
    media = {"audio": False, "video": {"from": world["stream"].id}}
    body = {
        "type": "streaming",
        "participant": world["room"].id,
        "media": media,
        "info": {"url": "rtmp://cdn.example/live/k"},
    }
    response = world["client"].post(f"{BASE}/subscriptions", body)
    assert response.status_code == 200, response.json()
    job = MediaJob.objects.get(id=response.json()["id"])
    assert (job.kind, job.spec["protocol"], job.spec["media"]["video"]["format"]["codec"]) == (
        "streaming-out",
        "rtmp",
        "h264",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "webrtc", "participant": "r", "media": {}}, "type"),
        ({"type": "recording", "participant": "ROOM", "media": {"audio": False, "video": {"from": "nope"}}}, "nope"),
        ({"type": "streaming", "participant": "ROOM", "media": {"audio": False, "video": False}}, "both be false"),
    ],
)
def test_bad_job_subscriptions_are_400(world, body, message):
    body = {**body, "participant": world["room"].id if body["participant"] == "ROOM" else body["participant"]}
    response = world["client"].post(f"{BASE}/subscriptions", body)
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]
    assert not MediaJob.objects.exists()


def test_another_tenants_room_and_jobs_are_not_found(world):
    other_service, _, other = ls.tenant("engine-jobs-other")
    media = {"audio": False, "video": {"from": world["stream"].id}}
    body = {"type": "recording", "participant": world["room"].id, "media": media}
    assert other.post(f"{BASE}/subscriptions", body).status_code == 404
    job_id = world["client"].post(f"{BASE}/subscriptions", body).json()["id"]
    assert other.delete(f"{BASE}/subscriptions/{job_id}").status_code == 404
    assert MediaJob.objects.get(id=job_id).state == "pending"
