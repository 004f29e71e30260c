"""The egress API in process: auth, validation, idempotency, tenancy, the status model,
queued-task timeouts and webhook deliveries (to a real local HTTP receiver)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from egress import services
from egress.models import EgressFile, EgressTask, WebhookDelivery
from egress.tasks import _post
from owt.client import EgressApiError
from streamengine.models import MediaJob

FLAT = {
    "layout": "flat",
    "channel": "egress_test",
    "access_token": "007eJxt9VMp+//+i9SOE",
    "workerUid": 42,
    "users": ["user1", "user2"],
    "filename_pattern": "file_output",
    "format": "hls",
    "video": {"width": 1280, "height": 720, "frameRate": 30, "bitrate": 1000},
    "audio": {"sampleRate": 48000, "channels": 2, "bitrate": 128},
}


def error_of(call) -> EgressApiError:
    with pytest.raises(EgressApiError) as raised:
        call()
    return raised.value


def test_start_enqueues_a_media_job_with_the_originals_task_id(egress, room):
    started = egress.start("m2d3k03l", FLAT)
    assert started["request_id"] == "m2d3k03l" and started["status"] == "ENQUEUED"
    assert re.fullmatch(r"[0-9a-f]{16}", started["task_id"])
    task = EgressTask.objects.get(id=started["task_id"])
    assert task.room_id == room.id and task.job.state == MediaJob.State.PENDING
    assert task.job.kind == "egress-room" and task.job.domain_id == room.id
    assert task.job.spec["participant"] == "egress-42"
    # The access token is not kept; the worker joins with an internal credential.
    assert "access_token" not in task.payload and "access_token" not in json.dumps(task.job.spec)
    assert task.job.cost > 0


def test_the_channel_is_a_room_of_the_app_by_id_or_name(egress, other_egress, room):
    assert egress.start("byid", {**FLAT, "channel": room.id})["status"] == "ENQUEUED"
    # Another app's room is no channel of this app.
    error = error_of(lambda: other_egress.start("theirs", {**FLAT, "channel": room.id}))
    assert error.status == 404 and "channel" in error.body["error"]


def test_same_request_id_answers_the_existing_task_and_another_body_conflicts(egress, room):
    first = egress.start("dup1", FLAT)
    assert egress.start("dup1", FLAT)["task_id"] == first["task_id"]
    assert EgressTask.objects.count() == 1 and MediaJob.objects.count() == 1
    error = error_of(lambda: egress.start("dup1", {**FLAT, "format": "mp4"}))
    assert error.status == 409 and error.body["request_id"] == "dup1" and first["task_id"] in error.body["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"request_id": "bad id!", "cmd": "record", "payload": FLAT}, "request_id"),
        ({"request_id": "a1", "cmd": "snapshot", "payload": FLAT}, "cmd"),
        ({"request_id": "a1", "cmd": "record"}, "payload"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "channel": None}}, "channel"),
        ({"request_id": "a1", "cmd": "record", "payload": {"layout": "flat"}}, "channel is required"),
        (
            {"request_id": "a1", "cmd": "record", "payload": {"layout": "freestyle"}},
            "is required for the freestyle layout",
        ),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "layout": "customized"}}, "layout"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "format": "avi"}}, "format"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "users": ["ok", "not ok"]}}, "users"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "video": {"width": "wide"}}}, "width"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "audio": {"channels": 6}}}, "channels"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "workerUid": 0}}, "workerUid"),
        ({"request_id": "a1", "cmd": "record", "payload": {**FLAT, "filename_pattern": "../x"}}, "filename_pattern"),
        (["not", "an", "object"], "Expected a dictionary"),
    ],
)
def test_bad_requests_are_400_in_the_egress_format(egress, room, body, words):
    response = egress.raw("POST", "/tasks", json=body)
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]
    assert not EgressTask.objects.exists()


def test_unknown_channel_and_malformed_json(egress, room):
    error = error_of(lambda: egress.start("a1", {**FLAT, "channel": "nowhere"}))
    assert error.status == 404 and error.body == {"error": "channel nowhere not found", "request_id": "a1"}
    signer = egress.signer
    response = signer.http.post(
        f"/egress/v1/{egress.app_id}/tasks",
        content=b"{not json",
        headers={"Authorization": signer.authorization(), "Content-Type": "application/json"},
    )
    assert response.status_code == 400 and "JSON" in response.json()["error"]


def test_every_route_needs_mauth(egress, room, http):
    started = egress.start("a1", FLAT)
    for method, path in [
        ("POST", "/tasks"),
        ("GET", "/tasks"),
        ("GET", f"/tasks/{started['task_id']}"),
        ("POST", f"/tasks/{started['task_id']}/stop"),
        ("POST", f"/tasks/{started['task_id']}/status"),
        ("GET", f"/tasks/{started['task_id']}/files"),
        ("PUT", "/webhook"),
    ]:
        response = http.request(method, f"/egress/v1/{egress.app_id}{path}", json={})
        assert response.status_code == 401, (method, path)
        assert "error" in response.json()


def test_one_app_never_sees_another_apps_tasks(egress, other_egress, room, app):
    started = egress.start("mine", FLAT)
    # Through its own app id: as unknown as a missing task.
    error = error_of(lambda: other_egress.status(started["task_id"]))
    assert error.status == 404
    assert error_of(lambda: other_egress.stop(started["task_id"])).status == 404
    assert other_egress.tasks() == []
    # Through the other app's id with its own credentials: refused.
    other_egress.app_id = app.id
    assert error_of(lambda: other_egress.tasks()).status == 403
    assert EgressTask.objects.get().status == "ENQUEUED"


def test_status_in_both_forms_with_files_and_request_id_echo(egress, room):
    started = egress.start("st1", FLAT)
    status = egress.request("POST", f"/tasks/{started['task_id']}/status", json={"request_id": "1yu323k5"})
    assert status["request_id"] == "1yu323k5" and status["task_id"] == started["task_id"]
    assert status["status"] == "ENQUEUED" and status["payload"]["files"] == []
    assert status["payload"]["layout"] == "flat" and status["payload"]["users"] == ["user1", "user2"]
    assert status["payload"]["video"] == FLAT["video"] and status["payload"]["format"] == "hls"
    assert egress.status(started["task_id"])["status"] == "ENQUEUED"
    missing = error_of(lambda: egress.status("92347f6bdf0465b3"))
    assert missing.status == 404 and missing.body["task_id"] == "92347f6bdf0465b3"
    assert egress.raw("GET", "/tasks/NOT-HEX").status_code == 404


def test_defaults_filled_in(egress, room):
    started = egress.start("d1", {"channel": "egress_test"})
    payload = EgressTask.objects.get(id=started["task_id"]).payload
    assert payload["layout"] == "flat" and payload["format"] == ["hls"] and payload["segment_duration"] == 6
    assert payload["video"] == {"width": 1280, "height": 720, "frameRate": 30, "bitrate": 2000}
    assert payload["audio"] == {"sampleRate": 48000, "channels": 2, "bitrate": 128}
    web = egress.start("w1", {"layout": "freestyle", "url": "http://127.0.0.1:9/page", "format": "hls+mp4"})
    task = EgressTask.objects.get(id=web["task_id"])
    assert task.job.kind == "egress-web" and task.job.domain_id is None and task.payload["format"] == ["hls", "mp4"]
    assert task.payload["video"]["frameRate"] == 15


def test_stop_a_queued_task_ends_it_stopped(egress, room):
    started = egress.start("s1", FLAT)
    stopped = egress.stop(started["task_id"], request_id="2yui23k5")
    assert stopped["request_id"] == "2yui23k5" and stopped["task_id"] == started["task_id"]
    services.task_follow_job(job_id=EgressTask.objects.get().job_id)  # the signal, after commit
    assert egress.status(started["task_id"])["status"] == "STOPPED"
    # Stopping again changes nothing.
    assert egress.stop(started["task_id"])["status"] == "STOPPED"


@pytest.mark.parametrize(
    ("state", "reason", "result", "status"),
    [
        ("pending", "", {}, "ENQUEUED"),
        ("starting", "", {}, "PROCESSING"),
        ("running", "", {}, "PROCESSING"),
        ("stopping", "stopped", {}, "STOPPING"),
        ("finished", "stopped", {}, "STOPPED"),
        ("finished", "", {"ended": "no user published for 30 s"}, "SUCCESS"),
        ("finished", "", {"limit": "maximum duration of 60 s reached"}, "TIMEOUT"),
        ("finished", "timeout: no media worker took the task within 60 s", {}, "TIMEOUT"),
        ("failed", "worker w stopped renewing its lease (killed or lost)", {}, "FAILED"),
    ],
)
def test_status_follows_the_job(egress, room, state, reason, result, status):
    started = egress.start("f1", FLAT)
    task = EgressTask.objects.get(id=started["task_id"])
    MediaJob.objects.filter(id=task.job_id).update(state=state, reason=reason, result=result)
    services.task_follow_job(job_id=task.job_id)
    shown = egress.status(task.id)
    assert shown["status"] == status
    if status in ("FAILED", "TIMEOUT", "SUCCESS"):
        assert shown["message"] and shown["ended_at"]


def test_files_are_listed_and_downloadable_with_auth(egress, other_egress, room, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "recordings": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "recordings")},
        },
    }
    from django.core.files.storage import storages

    storages._storages.pop("recordings", None)
    started = egress.start("fl1", FLAT)
    task = EgressTask.objects.get(id=started["task_id"])
    folder = tmp_path / "recordings" / "egress" / egress.app_id / task.id
    folder.mkdir(parents=True)
    (folder / "file_output.m3u8").write_text("#EXTM3U\n")
    files = [
        {
            "name": "file_output.m3u8",
            "kind": "m3u8",
            "size": 8,
            "user": "",
            "location": f"egress/{egress.app_id}/{task.id}/file_output.m3u8",
        }
    ]
    MediaJob.objects.filter(id=task.job_id).update(state="finished", reason="stopped", result={"files": files})
    services.task_follow_job(job_id=task.job_id)
    assert egress.status(task.id)["payload"]["files"] == ["file_output.m3u8"]
    listed = egress.files(task.id)
    assert listed[0]["name"] == "file_output.m3u8" and listed[0]["url"].endswith(
        f"/tasks/{task.id}/files/file_output.m3u8"
    )
    assert egress.download(task.id, "file_output.m3u8") == b"#EXTM3U\n"
    assert error_of(lambda: egress.download(task.id, "other.ts")).status == 404
    assert error_of(lambda: other_egress.download(task.id, "file_output.m3u8")).status == 404
    storages._storages.pop("recordings", None)


def test_list_filters(egress, room):
    first = egress.start("l1", FLAT)
    egress.start("l2", {**FLAT, "layout": "individual"})
    egress.stop(first["task_id"])
    services.task_follow_job(job_id=EgressTask.objects.get(id=first["task_id"]).job_id)
    assert [t["request_id"] for t in egress.tasks()] == ["l2", "l1"]
    assert [t["request_id"] for t in egress.tasks(status="STOPPED")] == ["l1"]
    assert [t["request_id"] for t in egress.tasks(layout="individual")] == ["l2"]
    assert error_of(lambda: egress.tasks(created_after="yesterday")).status == 400


def test_queued_too_long_times_out(egress, room, settings):
    settings.EGRESS_QUEUE_TIMEOUT_SECONDS = 60
    started = egress.start("t1", FLAT)
    assert services.tasks_time_out() == []
    EgressTask.objects.filter(id=started["task_id"]).update(updated_at=timezone.now() - timedelta(seconds=61))
    assert services.tasks_time_out() == [started["task_id"]]
    services.task_follow_job(job_id=EgressTask.objects.get().job_id)
    status = egress.status(started["task_id"])
    assert status["status"] == "TIMEOUT" and "no media worker" in status["message"]


class Receiver:
    """A local webhook receiver: answers the queued status codes (then 200), keeps what came."""

    def __init__(self, codes: list[int]) -> None:
        self.codes, self.received = list(codes), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                self.send_response(outer.codes.pop(0) if outer.codes else 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop answering and free the port (later deliveries are refused at once)."""
        self.server.shutdown()
        self.server.server_close()


def test_webhook_deliveries_are_signed_retried_and_logged(egress, room):
    receiver = Receiver([500])
    endpoint = egress.set_webhook(receiver.url, secret="s" * 32)
    assert endpoint["url"] == receiver.url and endpoint["secret"] == "s" * 32
    assert "secret" not in egress.request("GET", "/webhook")
    started = egress.start("wh1", FLAT)
    task = EgressTask.objects.get(id=started["task_id"])
    MediaJob.objects.filter(id=task.job_id).update(state="running")
    services.task_follow_job(job_id=task.job_id)
    assert list(WebhookDelivery.objects.order_by("created_at").values_list("status", flat=True)) == [
        "ENQUEUED",
        "PROCESSING",
    ]
    processing = WebhookDelivery.objects.get(status="PROCESSING")
    assert services.delivery_attempt(delivery_id=processing.id, post=_post) is False  # the 500
    assert services.delivery_attempt(delivery_id=processing.id, post=_post) is True
    processing.refresh_from_db()
    assert processing.state == "delivered" and processing.attempts == 2 and processing.response_code == 200
    headers, body = receiver.received[-1]
    expected = hmac.new(b"s" * 32, headers["X-Egress-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Egress-Signature"] == f"sha256={expected}"
    announced = json.loads(body)
    assert (
        announced["task_id"] == task.id and announced["status"] == "PROCESSING" and announced["app_id"] == egress.app_id
    )
    receiver.close()


def test_a_webhook_that_never_answers_fails_after_the_last_attempt(egress, room, settings):
    settings.EGRESS_WEBHOOK_ATTEMPTS = 2
    egress.set_webhook("http://127.0.0.1:9/nobody")
    egress.start("wh2", FLAT)
    delivery = WebhookDelivery.objects.get()
    assert services.delivery_attempt(delivery_id=delivery.id, post=_post) is False
    assert services.delivery_attempt(delivery_id=delivery.id, post=_post) is True  # gave up
    delivery.refresh_from_db()
    assert delivery.state == "failed" and delivery.attempts == 2 and delivery.last_error


def test_admin_pages(admin_client, egress, room):
    started = egress.start("ad1", FLAT)
    EgressFile.objects.create(task_id=started["task_id"], name="a.m3u8", kind="m3u8", size=1, location="x")
    for url in (
        "/admin/egress/egresstask/",
        f"/admin/egress/egresstask/{started['task_id']}/change/",
        "/admin/egress/egressfile/",
        "/admin/egress/webhookdelivery/",
        "/admin/egress/webhookendpoint/",
    ):
        assert admin_client.get(url).status_code == 200, url


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_with_one_request_id_make_one_task():
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    from conference.services import room_create, service_create

    service = service_create(name="racer", key="racer-key")
    room_create(service=service, name="egress_test")
    barrier = threading.Barrier(2)

    def start(_: int) -> tuple[str, bool]:
        barrier.wait()
        try:
            task, created = services.task_start(service=service, request_id="race", cmd="record", payload=dict(FLAT))
            return task.id, created
        finally:
            connections.close_all()

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(start, range(2)))
    assert results[0][0] == results[1][0] and sorted(created for _, created in results) == [False, True]
    assert EgressTask.objects.count() == 1 and MediaJob.objects.filter(kind="egress-room").count() == 1
