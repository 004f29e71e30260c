"""Every write of the egress app: tasks started and stopped, their status following their
media job, queued tasks timed out, webhook deliveries.

A task's status is its job's state in the egress vocabulary (:func:`status_of`), written
by :func:`task_follow_job` whenever the engine says the job changed
(``streamengine.jobs.services.job_state_changed``, in whichever process changed it); each
change is announced once to the app's webhook (``WebhookDelivery``, sent by a Celery task
with retries).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from conference.models import Room, Service
from egress.errors import ChannelNotFound, DuplicateRequest
from egress.jobs import EgressRoomJob, EgressWebJob
from egress.models import EgressFile, EgressTask, WebhookDelivery, WebhookEndpoint
from streamengine.jobs import services as jobs
from streamengine.models import MediaJob

Status = EgressTask.Status
# What a 1280x720 30 fps H.264 encode (veryfast) costs, in cores, and what each decoded input
# and a page's renderer add (bench egress: 2 inputs composited 0.42 core, a page 0.61): a
# worker takes a task only if its CPU budget holds it (streamengine.jobs.services.job_claim),
# so it never runs one slower than real time.
ENCODE_720P30_COST = 0.35
INPUT_DECODE_COST = 0.05
PAGE_RENDER_COST = 0.3


def new_task_id(cmd: str, channel: str, request_id: str) -> str:
    """The original's task id: 16 hex digits of SHA-256 over ``cmd:channel:request_id:unix_ns``."""
    return hashlib.sha256(f"{cmd}:{channel}:{request_id}:{time.time_ns()}".encode()).hexdigest()[:16]


def task_cost(payload: dict) -> float:
    """The CPU a task needs to run in real time: its encodes, its decodes, the page renderer."""
    video = payload["video"]
    scale = video["width"] * video["height"] * video["frameRate"] / (1280 * 720 * 30)
    encode = ENCODE_720P30_COST * max(scale, 0.1) * len(payload["format"])
    if payload["layout"] == "freestyle":
        return round(encode + PAGE_RENDER_COST, 3)
    users = len(payload["users"]) or 2
    file_sets = users if payload["layout"] == "individual" else 1
    return round(encode * file_sets + INPUT_DECODE_COST * users, 3)


def _room(service: Service, channel: str) -> Room:
    room = Room.objects.filter(service=service, id=channel).first() or (
        Room.objects.filter(service=service, name=channel).order_by("created_at").first()
    )
    if room is None:
        raise ChannelNotFound(f"channel {channel} not found")
    return room


def task_start(*, service: Service, request_id: str, cmd: str, payload: dict) -> tuple[EgressTask, bool]:
    """Start a task, or answer the one this ``request_id`` already started (same request) —
    a different request under a used ``request_id`` is a conflict. Returns (task, created)."""
    payload = {key: value for key, value in payload.items() if key != "access_token"}
    channel = payload.get("channel", "")
    room = _room(service, channel) if channel else None
    existing = EgressTask.objects.filter(service=service, request_id=request_id).first()
    if existing is not None:
        return _same_request(existing, cmd, payload), False
    task_id = new_task_id(cmd, channel, request_id)
    try:
        with transaction.atomic():
            task = EgressTask.objects.create(
                id=task_id,
                service=service,
                request_id=request_id,
                cmd=cmd,
                layout=payload["layout"],
                channel=channel,
                room_id=room.id if room else "",
                payload=payload,
                message="waiting for a media worker",
            )
            web = payload["layout"] == "freestyle"
            spec = {"app_id": service.id, "task_id": task_id, "payload": payload, "room_id": room.id if room else ""}
            if payload.get("workerUid"):
                spec["participant"] = f"egress-{payload['workerUid']}"
            # A web task's job joins no room itself: the page it renders does (the room viewer).
            task.job = jobs.job_create(
                domain_id=room.id if room and not web else None,
                kind=(EgressWebJob if web else EgressRoomJob).kind,
                spec=spec,
                cost=task_cost(payload),
            )
            task.save(update_fields=["job"])
            _announce(task)
    except IntegrityError:
        # The same request_id started concurrently: the constraint let one through.
        existing = EgressTask.objects.get(service=service, request_id=request_id)
        return _same_request(existing, cmd, payload), False
    return task, True


def _same_request(task: EgressTask, cmd: str, payload: dict) -> EgressTask:
    if task.cmd != cmd or task.payload != payload:
        raise DuplicateRequest(f"request_id {task.request_id} was used for another request (task {task.id})")
    return task


def task_stop(*, task: EgressTask) -> EgressTask:
    """Ask the task's job to stop (a queued one ends at once, a running one within a heartbeat)."""
    if not task.terminal and task.job_id is not None:
        jobs.job_stop(job_id=task.job_id)
    task.refresh_from_db()
    return task


def status_of(job: MediaJob) -> tuple[str, str]:
    """(status, message) of a task whose job is ``job``."""
    state = job.state
    if state == MediaJob.State.PENDING:
        waiting = job.progress.get("waiting") or job.progress.get("last_error") or "waiting for a media worker"
        return Status.ENQUEUED, waiting
    if state in (MediaJob.State.STARTING, MediaJob.State.RUNNING):
        return Status.PROCESSING, ""
    if state == MediaJob.State.STOPPING:
        return Status.STOPPING, "stop in progress"
    if state == MediaJob.State.FAILED:
        return Status.FAILED, job.reason
    if job.reason.startswith("timeout"):
        return Status.TIMEOUT, job.reason
    if job.result.get("limit"):
        return Status.TIMEOUT, job.result["limit"]
    if job.reason == "stopped":
        return Status.STOPPED, "stopped by request"
    return Status.SUCCESS, job.result.get("ended", "")


def task_follow_job(*, job_id: str) -> EgressTask | None:
    """Bring a task's status to its job's; announce and record what changed."""
    with transaction.atomic():
        task = EgressTask.objects.select_for_update().filter(job_id=job_id).first()
        if task is None:
            return None
        job = MediaJob.objects.get(id=job_id)
        status, message = status_of(job)
        if status == task.status and message == task.message:
            return task
        changed = status != task.status
        task.status, task.message = status, message
        if status == Status.PROCESSING and task.started_at is None:
            task.started_at = job.started_at or timezone.now()
        if task.terminal:
            task.ended_at = job.ended_at or timezone.now()
            _record_files(task, job.result.get("files", []))
        task.save()
        if changed:
            _announce(task)
    return task


def _record_files(task: EgressTask, files: list) -> None:
    for file in files:
        EgressFile.objects.get_or_create(
            task=task,
            name=file["name"],
            defaults={
                "kind": file["kind"],
                "user": file.get("user", ""),
                "size": file["size"],
                "location": file["location"],
            },
        )


def tasks_time_out() -> list[str]:
    """Tasks no worker took within ``EGRESS_QUEUE_TIMEOUT_SECONDS`` end TIMEOUT (the original
    coded this but never applied it)."""
    limit = settings.EGRESS_QUEUE_TIMEOUT_SECONDS
    stale = EgressTask.objects.filter(
        status=Status.ENQUEUED,
        job__state=MediaJob.State.PENDING,
        updated_at__lt=timezone.now() - timedelta(seconds=limit),
    )
    ended = []
    for task in stale:
        jobs.job_stop(job_id=task.job_id, reason=f"timeout: no media worker took the task within {limit} s")
        ended.append(task.id)
    return ended


# Webhooks.


def webhook_set(*, service: Service, url: str, secret: str | None = None, active: bool = True) -> WebhookEndpoint:
    endpoint, _ = WebhookEndpoint.objects.update_or_create(
        service=service,
        defaults={"url": url, "secret": secret or secrets.token_urlsafe(32), "active": active},
    )
    return endpoint


def webhook_body(task: EgressTask) -> dict:
    from egress.serializers import TaskSerializer

    return {**TaskSerializer(task).data, "app_id": task.service_id, "channel": task.channel, "timestamp": time.time()}


def _announce(task: EgressTask) -> None:
    endpoint = WebhookEndpoint.objects.filter(service_id=task.service_id, active=True).first()
    if endpoint is None:
        return
    delivery = WebhookDelivery.objects.create(
        task=task, status=task.status, url=endpoint.url, body=json.loads(json.dumps(webhook_body(task), default=str))
    )
    from egress.tasks import deliver_webhook

    transaction.on_commit(lambda: deliver_webhook.delay(delivery.id))


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``X-Egress-Signature``: HMAC-SHA256 of ``"<timestamp>.<body>"`` with the endpoint's secret."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def delivery_attempt(*, delivery_id: int, post: object) -> bool:
    """Send one delivery once; True when delivered (or nothing is left to do)."""
    delivery = WebhookDelivery.objects.select_related("task").filter(id=delivery_id).first()
    if delivery is None or delivery.state == WebhookDelivery.State.DELIVERED:
        return True
    endpoint = WebhookEndpoint.objects.filter(service_id=delivery.task.service_id).first()
    body = json.dumps(delivery.body).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Egress-Timestamp": timestamp,
        "X-Egress-Signature": signature(endpoint.secret if endpoint else "", timestamp, body),
        "X-Egress-Delivery": str(delivery.id),
    }
    delivery.attempts += 1
    try:
        code = post(delivery.url, body, headers)
        delivery.response_code = code
        ok = 200 <= code < 300
        delivery.last_error = "" if ok else f"HTTP {code}"
    except Exception as exc:
        ok = False
        delivery.last_error = f"{type(exc).__name__}: {exc}"
    if ok:
        delivery.state, delivery.delivered_at = WebhookDelivery.State.DELIVERED, timezone.now()
    elif delivery.attempts >= settings.EGRESS_WEBHOOK_ATTEMPTS:
        delivery.state = WebhookDelivery.State.FAILED
    delivery.save()
    return ok or delivery.state == WebhookDelivery.State.FAILED
