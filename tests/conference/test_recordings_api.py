"""``/v1/rooms/{r}/recordings``: validation, tenancy and the abstract (the job itself: test_media_jobs.py)."""

from __future__ import annotations

import pytest

from streamengine.models import MediaJob
from tests.streamengine import live_state as ls


@pytest.fixture
def setup(db, django_capture_on_commit_callbacks):
    service, _, client = ls.tenant("rec")
    room = ls.room(service)
    alice = ls.participant(room.id)
    stream = ls.publication(alice)
    return {"api": client, "room": room, "stream": stream}


def post(setup, body):
    return setup["api"].post(f"/v1/rooms/{setup['room'].id}/recordings", body)


def test_create_renders_the_owt_abstract_and_a_pending_job(setup):
    stream = setup["stream"].id
    response = post(setup, {"media": {"audio": {"from": stream}, "video": {"from": stream}}})
    assert response.status_code == 200, response.json()
    body = response.json()
    job = MediaJob.objects.get(id=body["id"])
    assert (job.kind, job.state, job.spec["container"]) == ("recording", "pending", "auto")
    assert body["media"]["video"] == {"from": stream, "status": "active", "format": {"codec": "vp8"}}
    assert body["storage"] == {"host": "", "file": ""} and body["state"] == "pending"
    listed = setup["api"].get(f"/v1.1/rooms/{setup['room'].id}/recordings").json()
    assert [r["id"] for r in listed] == [body["id"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"media": {"audio": False, "video": False}}, "audio and video cannot both be false"),
        ({"media": {"audio": False}}, "video"),
        ({"container": "avi", "media": {"audio": False, "video": {"from": "x"}}}, "container"),
        ({"media": {"audio": False, "video": {"from": "nope"}}}, "no video in stream 'nope'"),
        ({"media": {"audio": {"from": "s", "format": {"codec": "mp3"}}, "video": False}}, "codec"),
        ({"media": {"audio": False, "video": {"from": "s"}}, "extra": 1}, "extra"),
        ([], "Body must be an object"),
    ],
)
def test_bad_requests_name_the_field(setup, body, message):
    response = post(setup, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 1301 and message in error["message"]
    assert not MediaJob.objects.exists()


def test_patch_and_delete(setup):
    stream = setup["stream"].id
    created = post(setup, {"media": {"audio": False, "video": {"from": stream}}}).json()
    path = f"/v1/rooms/{setup['room'].id}/recordings/{created['id']}"
    patched = setup["api"].patch(path, [{"op": "replace", "path": "/media/video/status", "value": "inactive"}])
    assert patched.status_code == 200 and patched.json()["media"]["video"]["status"] == "inactive"
    refused = setup["api"].patch(path, [{"op": "replace", "path": "/media/audio/from", "value": stream}])
    assert refused.status_code == 400 and "has no audio" in refused.json()["error"]["message"]
    assert setup["api"].delete(path).status_code == 200
    assert MediaJob.objects.get(id=created["id"]).state == "finished"  # it never started


def test_another_tenants_recording_is_not_found(setup):
    created = post(setup, {"media": {"audio": False, "video": {"from": setup["stream"].id}}}).json()
    other_service, _, other = ls.tenant("other")
    other_room = ls.room(other_service)
    for path in (
        f"/v1/rooms/{setup['room'].id}/recordings/{created['id']}",
        f"/v1/rooms/{other_room.id}/recordings/{created['id']}",
    ):
        assert other.get(path).status_code == 404
        assert other.delete(path).status_code == 404
    assert setup["api"].get(f"/v1/rooms/{setup['room'].id}/recordings/{created['id']}/file").status_code == 404
