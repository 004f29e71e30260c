"""``/v1/rooms/{r}/streaming-ins``: validation, the SSRF policy and tenancy (no media; the job
itself, pulling real RTSP/RTMP sources: tests/streamengine/test_streaming_in.py)."""

from __future__ import annotations

import pytest

from streamengine.exceptions import SourceRefused
from streamengine.jobs.streaming_in import check_source_url
from streamengine.models import MediaJob
from tests.streamengine import live_state as ls

MEDIA = {"audio": "auto", "video": True}


@pytest.fixture
def setup(db, django_capture_on_commit_callbacks):
    service, _, client = ls.tenant("sin")
    return {"api": client, "room": ls.room(service)}


def post(setup, body, version="v1"):
    return setup["api"].post(f"/{version}/rooms/{setup['room'].id}/streaming-ins", body)


def refusal(url: str) -> str:
    with pytest.raises(SourceRefused) as refused:
        check_source_url(url)
    return refused.value.message


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("rtsp://127.0.0.1:8554/live", "non-public address (127.0.0.1)"),
        ("rtmp://localhost/live/x", "resolves to a non-public address"),
        ("http://10.1.2.3/index.m3u8", "non-public address (10.1.2.3)"),
        ("https://169.254.169.254/latest/meta-data", "non-public address (169.254.169.254)"),
        ("rtsp://[::1]/live", "non-public address (::1)"),
        ("rtsp://[::ffff:192.168.1.1]/live", "non-public address"),
        ("rtsp://0.0.0.0/live", "non-public address"),
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("ftp://example.org/video.ts", "scheme 'ftp' is not allowed"),
        ("/var/lib/video.mp4", "scheme '(none)' is not allowed"),
        ("rtsp:///live", "no host"),
        ("rtsp://no-such-host.invalid/live", "cannot resolve host 'no-such-host.invalid'"),
    ],
)
def test_the_ssrf_policy_refuses_with_a_reason(settings, url, message):
    settings.STREAMING_IN_ALLOW_PRIVATE = False
    assert message in refusal(url)


def test_public_addresses_pass_and_settings_open_the_policy(settings):
    settings.STREAMING_IN_ALLOW_PRIVATE = False
    check_source_url("rtsp://8.8.8.8:554/live")
    check_source_url("RTMP://[2001:4860:4860::8888]/live/x")
    settings.STREAMING_IN_ALLOW_PRIVATE = True
    check_source_url("rtsp://127.0.0.1:8554/live")
    assert "not allowed" in refusal("file:///tmp/a.mp4")
    settings.STREAMING_IN_SCHEMES = ["rtsp", "file"]
    check_source_url("file:///tmp/a.mp4")
    assert "scheme 'rtmp' is not allowed (allowed: rtsp, file)" in refusal("rtmp://127.0.0.1/live")


def test_a_refused_url_answers_400_naming_the_problem_and_creates_no_job(setup, settings):
    settings.STREAMING_IN_ALLOW_PRIVATE = False
    response = post(setup, {"connection": {"url": "rtsp://127.0.0.1/live"}, "media": MEDIA})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 1301 and "connection.url" in error["message"] and "127.0.0.1" in error["message"]
    assert not MediaJob.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"media": MEDIA}, "connection"),
        ({"connection": {}, "media": MEDIA}, "connection.url"),
        ({"connection": {"url": "rtsp://8.8.8.8/x", "transportProtocol": "sctp"}, "media": MEDIA}, "transportProtocol"),
        ({"connection": {"url": "rtsp://8.8.8.8/x", "bufferSize": "big"}, "media": MEDIA}, "bufferSize"),
        ({"connection": {"url": "rtsp://8.8.8.8/x", "user": "me"}, "media": MEDIA}, "connection.user"),
        ({"connection": {"url": "rtsp://8.8.8.8/x"}}, "media"),
        ({"connection": {"url": "rtsp://8.8.8.8/x"}, "media": {"video": True}}, "media.audio"),
        ({"connection": {"url": "rtsp://8.8.8.8/x"}, "media": {"audio": "yes", "video": True}}, "media.audio"),
        ({"connection": {"url": "rtsp://8.8.8.8/x"}, "media": {"audio": False, "video": False}}, "both be false"),
        ({"connection": {"url": "rtsp://8.8.8.8/x"}, "media": MEDIA, "transport": "tcp"}, "transport"),
        ({"connection": {"url": "rtsp://8.8.8.8/x"}, "media": MEDIA, "attributes": []}, "attributes"),
        ([], "Body must be an object"),
    ],
)
def test_bad_bodies_answer_400_naming_the_field(setup, body, message):
    response = post(setup, body, version="v1.1")
    assert response.status_code == 400, response.json()
    error = response.json()["error"]
    assert error["code"] == 1301 and message in error["message"], error
    assert not MediaJob.objects.exists()


def test_another_tenants_room_is_not_found(setup):
    _, _, other = ls.tenant("other")
    body = {"connection": {"url": "rtsp://8.8.8.8/x"}, "media": MEDIA}
    room = setup["room"].id
    assert other.post(f"/v1/rooms/{room}/streaming-ins", body).status_code == 404
    assert other.delete(f"/v1/rooms/{room}/streaming-ins/123").status_code == 404
    assert not MediaJob.objects.exists()


def test_delete_stops_a_job_not_published_yet_and_refuses_other_ids(setup):
    job = MediaJob.objects.create(
        id="424242", kind="streaming-in", domain_id=setup["room"].id, spec={"connection": {}, "media": MEDIA}
    )
    recording = MediaJob.objects.create(id="515151", kind="recording", domain_id=setup["room"].id, spec={})
    path = f"/v1/rooms/{setup['room'].id}/streaming-ins"
    assert setup["api"].delete(f"{path}/{recording.id}").status_code == 404
    assert setup["api"].delete(f"{path}/{job.id}").status_code == 200
    job.refresh_from_db()
    assert (job.state, job.reason) == ("finished", "stopped")
