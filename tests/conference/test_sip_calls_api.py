"""``/v1/rooms/{r}/sipcalls``: validation, PATCH, tenancy and the abstract (the calls: test_sip_calls.py)."""

from __future__ import annotations

import pytest

from streamengine.models import MediaJob
from tests.streamengine import live_state as ls

AUDIO_ONLY = {"audio": True, "video": False}


@pytest.fixture
def setup(db, django_capture_on_commit_callbacks):
    service, client, room, stream = ls.streaming_room("sip")
    return {"api": client, "room": room, "stream": stream, "service": service}


def post(setup, body, version="v1"):
    return setup["api"].post(f"/{version}/rooms/{setup['room'].id}/sipcalls", body)


def test_dial_out_renders_owts_form_and_a_pending_job(setup):
    stream = setup["stream"].id
    body = {"peerURI": "sip:alice@example.org", "mediaIn": AUDIO_ONLY, "mediaOut": {"audio": {"from": stream}}}
    response = post(setup, body)
    assert response.status_code == 200, response.json()
    call = response.json()
    job = MediaJob.objects.get(id=call["id"])
    assert (job.kind, job.state) == ("sip", "pending")
    assert job.spec == {
        "type": "dial-out",
        "peerURI": "sip:alice@example.org",
        "media": {"audio": {"from": stream, "status": "active"}, "video": False},
    }
    assert call["type"] == "dial-out" and call["peer"] == "sip:alice@example.org" and call["input"] is None
    assert call["output"]["media"] == {"audio": {"from": stream}, "video": False}
    assert call["call"] == {"state": "pending"} and call["state"] == "pending"
    listed = setup["api"].get(f"/v1.1/rooms/{setup['room'].id}/sipcalls").json()
    assert [c["id"] for c in listed] == [call["id"]]


def test_without_a_source_the_callee_hears_the_mixed_stream_else_nothing(setup):
    call = post(setup, {"peerURI": "sip:bob@example.org", "mediaIn": AUDIO_ONLY, "mediaOut": {}}).json()
    assert call["output"]["media"]["audio"] is False
    mixed = ls.publication(ls.participant(setup["room"].id))
    mixed.id, mixed.kind = f"{setup['room'].id}-common", "mixed"
    mixed.save()
    call = post(setup, {"peerURI": "sip:bob@example.org", "mediaIn": AUDIO_ONLY, "mediaOut": {}}).json()
    assert call["output"]["media"]["audio"] == {"from": f"{setup['room'].id}-common"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mediaIn": AUDIO_ONLY, "mediaOut": {}}, "peerURI"),
        ({"peerURI": "tel:123", "mediaIn": AUDIO_ONLY, "mediaOut": {}}, "peerURI"),
        ({"peerURI": "sip:a@b", "mediaIn": {"audio": False, "video": False}, "mediaOut": {}}, "must be true"),
        ({"peerURI": "sip:a@b", "mediaIn": {"audio": True, "video": True}, "mediaOut": {}}, "audio-only"),
        ({"peerURI": "sip:a@b", "mediaIn": AUDIO_ONLY, "mediaOut": {"video": {"from": "x"}}}, "audio-only"),
        ({"peerURI": "sip:a@b", "mediaIn": AUDIO_ONLY, "mediaOut": {"audio": {"from": "nope"}}}, "no audio in"),
        ({"peerURI": "sip:a@b", "mediaIn": AUDIO_ONLY, "mediaOut": {}, "extra": 1}, "extra"),
        ([], "Body must be an object"),
    ],
)
def test_bad_requests_are_400_naming_the_field(setup, body, message):
    response = post(setup, body)
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == 1301 and message in error["message"], error
    assert not MediaJob.objects.exists()


def test_patch_switches_what_the_callee_hears_and_delete_stops(setup):
    call = post(setup, {"peerURI": "sip:a@example.org", "mediaIn": AUDIO_ONLY, "mediaOut": {}}).json()
    path = f"/v1/rooms/{setup['room'].id}/sipcalls/{call['id']}"
    stream = setup["stream"].id
    patched = setup["api"].patch(path, [{"op": "replace", "path": "/output/media/audio/from", "value": stream}])
    assert patched.status_code == 200, patched.json()
    assert patched.json()["output"]["media"]["audio"] == {"from": stream}
    assert MediaJob.objects.get(id=call["id"]).spec["media"]["audio"]["from"] == stream
    for bad in ("/media/audio/from", "/output/media/video/from", "/output/media/audio/status"):
        refused = setup["api"].patch(path, [{"op": "replace", "path": bad, "value": stream}])
        assert refused.status_code == 400 and "unsupported" in refused.json()["error"]["message"]
    unknown = setup["api"].patch(path, [{"op": "replace", "path": "/output/media/audio/from", "value": "nope"}])
    assert unknown.status_code == 400
    assert setup["api"].delete(path).status_code == 200
    assert MediaJob.objects.get(id=call["id"]).state == "finished"
    missing = setup["api"].get(f"/v1/rooms/{setup['room'].id}/sipcalls/123")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "SIP call not found"


def test_another_tenants_call_is_not_found(setup):
    call = post(setup, {"peerURI": "sip:a@example.org", "mediaIn": AUDIO_ONLY, "mediaOut": {}}).json()
    other_service, _, other = ls.tenant("other")
    path = f"/v1/rooms/{setup['room'].id}/sipcalls/{call['id']}"
    assert (other.get(path).status_code, other.delete(path).status_code) == (404, 404)
    assert MediaJob.objects.get(id=call["id"]).state == "pending"
