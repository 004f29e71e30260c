"""Egress tasks: a room (composite or per user) or a web page recorded into HLS/MP4.

An app (``app_id`` in the URL) is an OWT service: it authenticates with MAuth as the
management API does, and its rooms are the ``channel``\\ s it can record. A task is the
egress-facing record of one media job (``streamengine.MediaJob``): the job runs it, the
task keeps what the egress API promises — the request, its ``request_id`` (idempotent per
app), the status in the egress vocabulary, the files written, and the webhook deliveries.
"""

from __future__ import annotations

from django.db import models

from conference.models import Service
from streamengine.models import MediaJob


class EgressTask(models.Model):
    class Status(models.TextChoices):
        ENQUEUED = "ENQUEUED"
        PROCESSING = "PROCESSING"
        STOPPING = "STOPPING"
        SUCCESS = "SUCCESS"  # ended by itself: the room stayed empty, the page closed
        STOPPED = "STOPPED"  # stopped by a stop request
        FAILED = "FAILED"
        TIMEOUT = "TIMEOUT"  # queued too long (no worker had room), or the maximum duration was reached

    TERMINAL = (Status.SUCCESS, Status.STOPPED, Status.FAILED, Status.TIMEOUT)

    class Layout(models.TextChoices):
        FLAT = "flat", "flat: the users composited on an adaptive grid"
        SPOTLIGHT = "spotlight", "spotlight (rendered as flat, as the original does)"
        INDIVIDUAL = "individual", "individual: one file set per user"
        FREESTYLE = "freestyle", "freestyle: a web page"

    # 16 lowercase hex: the first 8 bytes of SHA-256 over "{cmd}:{channel}:{request_id}:{ns}".
    id = models.CharField(primary_key=True, max_length=16)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="egress_tasks")
    request_id = models.CharField(max_length=32)
    cmd = models.CharField(max_length=16, default="record")
    layout = models.CharField(max_length=16, choices=Layout.choices)
    channel = models.CharField(max_length=64, blank=True, help_text="The room's name or id as requested")
    room_id = models.CharField(max_length=24, blank=True, db_index=True)
    # The validated request payload (access_token left out: it is not kept).
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ENQUEUED, db_index=True)
    message = models.TextField(blank=True, help_text="Why it ended, or what it waits for")
    job = models.OneToOneField(MediaJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="egress")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Two concurrent starts with one request_id: one task, the other answers it.
            models.UniqueConstraint(fields=["service", "request_id"], name="egress_request_once"),
        ]
        indexes = [models.Index(fields=["service", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def terminal(self) -> bool:
        return self.status in self.TERMINAL


class EgressFile(models.Model):
    """A file a task wrote (playlist, segment, MP4), where it is kept, and its size."""

    task = models.ForeignKey(EgressTask, on_delete=models.CASCADE, related_name="files")
    name = models.CharField(max_length=255, help_text="Relative to the task's folder")
    kind = models.CharField(max_length=8, help_text="m3u8 | ts | mp4")
    user = models.CharField(max_length=255, blank=True, help_text="Individual recording: whose")
    size = models.BigIntegerField(default=0)
    location = models.CharField(max_length=1024, help_text="The storage name in the 'recordings' storage")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="egress_file_once")]
        ordering = ["task", "name"]

    def __str__(self) -> str:
        return self.name


class WebhookEndpoint(models.Model):
    """Where an app's task state changes are POSTed, signed with ``secret`` (HMAC-SHA256)."""

    service = models.OneToOneField(Service, on_delete=models.CASCADE, related_name="egress_webhook")
    url = models.URLField(max_length=1024)
    secret = models.CharField(max_length=128)
    active = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.url


class WebhookDelivery(models.Model):
    """One state change of one task, sent to the app's endpoint (retried with backoff)."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after the last retry

    task = models.ForeignKey(EgressTask, on_delete=models.CASCADE, related_name="deliveries")
    status = models.CharField(max_length=16, help_text="The task status announced")
    url = models.URLField(max_length=1024)
    body = models.JSONField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    response_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task_id} {self.status} ({self.state})"
