"""The stream engine's persistent state.

A *domain* is the engine's scope for participants and streams; a conference room is
the domain with the room's id, and the conference app keeps the domain's copy of the
room settings the engine enforces (roles, limits, accepted media) in step with the
room. Tokens are issued for a domain and consumed once at signaling login.
"""

from __future__ import annotations

import secrets

from django.db import models


def object_id() -> str:
    """24 lowercase hex characters, the shape OWT clients know from MongoDB ObjectIds."""
    return secrets.token_hex(12)


class Domain(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    # The service that owns the domain (opaque to the engine; the conference app scopes by it).
    owner = models.CharField(max_length=64, blank=True, db_index=True)
    # The room settings the engine enforces: roles, participantLimit, inputLimit, mediaIn,
    # mediaOut, views, notifying, transcoding (the OWT Room object without name/_id).
    config = models.JSONField(default=dict)
    # The media node hosting the domain's peer connections (placed by load at first join).
    node = models.ForeignKey("Node", null=True, blank=True, on_delete=models.SET_NULL, related_name="domains")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.id

    def role(self, name: str) -> dict | None:
        return next((role for role in self.config.get("roles", []) if role.get("role") == name), None)


class Token(models.Model):
    """A one-time join token. Consuming it deletes the row, so exactly one login wins."""

    id = models.CharField(primary_key=True, max_length=24, default=object_id)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="tokens")
    user = models.CharField(max_length=255)
    role = models.CharField(max_length=255)
    origin = models.JSONField(default=dict)
    host = models.CharField(max_length=255)
    secure = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    # Set for the internal credential of a media job: its participant is the job's, not a user.
    job = models.ForeignKey("MediaJob", null=True, blank=True, on_delete=models.CASCADE, related_name="+")

    class Meta:
        # Not DRF's API tokens ("Auth Token" in the admin): one-time room join tokens.
        verbose_name = "room token"

    def __str__(self) -> str:
        return f"{self.user}/{self.role}@{self.domain_id}"


class Node(models.Model):
    """A media node process (the stream-engine ``WorkerNode``): hosts peer connections for rooms."""

    id = models.CharField(primary_key=True, max_length=64)
    agent = models.CharField(max_length=255, help_text="Host/agent locality name")
    kind = models.CharField(max_length=32, default="webrtc")
    # Channels-layer channel name the portal sends node commands to.
    channel_name = models.CharField(max_length=255, blank=True)
    stream_addr = models.JSONField(default=dict, help_text='{"ip": host, "port": n}')
    load = models.FloatField(default=0.0, help_text="0..1, reported with each heartbeat")
    embedded = models.BooleanField(default=False, help_text="Runs inside a portal process")
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.id


class Participant(models.Model):
    """A logged-in client (or a server-side job) in a domain; id = the signaling session id."""

    id = models.CharField(primary_key=True, max_length=64)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="participants")
    user = models.CharField(max_length=255)
    role = models.CharField(max_length=255)
    permission = models.JSONField(default=dict, help_text='{"publish":{"audio","video"},"subscribe":{...}}')
    # Channels-layer channel of the signaling consumer serving this participant.
    portal = models.CharField(max_length=255, blank=True)
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="participants")
    user_agent = models.JSONField(default=dict, blank=True)
    protocol = models.CharField(max_length=8, default="1.2")
    joined_at = models.DateTimeField(auto_now_add=True)
    # A media job's participant: not listed as a user, its sessions typed by the job's kind.
    job = models.ForeignKey("MediaJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="participants")

    class Meta:
        indexes = [models.Index(fields=["domain", "joined_at"])]

    def __str__(self) -> str:
        return f"{self.user} ({self.id})"


class Publication(models.Model):
    """A published stream. ``media`` keeps the protocol-1.2 track form; REST renders v1.0/v1.1 forms."""

    id = models.CharField(primary_key=True, max_length=64)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="publications")
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="publications"
    )
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="publications")
    kind = models.CharField(max_length=32, default="forward", help_text="forward | mixed")
    # {"tracks": [{"id", "type", "source", "format", "parameters", "optional", "status", "mid", "rid"}]}
    media = models.JSONField(default=dict)
    data = models.BooleanField(default=False)
    # {"owner", "type": "webrtc"|"streaming"|"sip"|"analytics", "inViews": [...], "attributes": {...}}
    info = models.JSONField(default=dict)
    transport_id = models.CharField(max_length=64, blank=True)
    ready = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["domain", "created_at"])]

    def __str__(self) -> str:
        return self.id


class Subscription(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="subscriptions")
    participant = models.ForeignKey(
        Participant, null=True, blank=True, on_delete=models.CASCADE, related_name="subscriptions"
    )
    node = models.ForeignKey(Node, null=True, blank=True, on_delete=models.SET_NULL, related_name="subscriptions")
    kind = models.CharField(max_length=32, default="webrtc")
    # {"tracks": [{"type", "from", "format", "parameters", "mid", "status"}]}
    media = models.JSONField(default=dict)
    data = models.JSONField(null=True, blank=True)
    info = models.JSONField(default=dict)
    transport_id = models.CharField(max_length=64, blank=True)
    ready = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["domain", "created_at"])]

    def __str__(self) -> str:
        return self.id


class MediaJob(models.Model):
    """A server-side media job (recording, streaming-out, streaming-in, …) run by a Celery worker.

    The row is the job's truth: the broker only delivers "run job N" once (acked on receipt);
    the worker holding the job renews ``lease_until`` with every heartbeat, and a job whose
    lease lapsed is restarted or failed by the reaper (``streamengine.jobs.services``).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        STARTING = "starting"
        RUNNING = "running"
        STOPPING = "stopping"
        FINISHED = "finished"
        FAILED = "failed"

    ACTIVE = (State.PENDING, State.STARTING, State.RUNNING, State.STOPPING)

    id = models.CharField(primary_key=True, max_length=32)
    kind = models.CharField(max_length=32, db_index=True, help_text="recording | streaming-out | streaming-in")
    # None: a job that joins no room (an egress web page capture).
    domain = models.ForeignKey(Domain, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    # What to do: the resource's request (media sources, container, url, parameters, connection).
    spec = models.JSONField(default=dict)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Why it failed (or how it ended)")
    worker = models.CharField(max_length=255, blank=True, help_text="host/pid of the worker running it")
    attempt = models.PositiveIntegerField(default=0)
    lease_until = models.DateTimeField(null=True, blank=True, db_index=True)
    # {"duration": s, "bytes": n, "frames": {"audio": n, "video": n}, "last_error": str}
    progress = models.JSONField(default=dict, blank=True)
    # What it produced: {"storage": {"host", "file"}, "files": [...], "url": ..., "stream": id}
    result = models.JSONField(default=dict, blank=True)
    cost = models.FloatField(default=0.0, help_text="CPU cores it is expected to use (the worker's budget)")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["domain", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE
