"""peermetrics data model: who called whom, what happened, and the raw stats behind the summary.

UUID primary keys and timezone-aware timestamps everywhere. Uniqueness the SDK relies on
(one conference per ``(app, conference_id)``, one participant per ``(app, participant_id)``,
``tcp_used``/``turn_used`` once per connection) is enforced by constraints, so concurrent
requests resolve by the database, not by check-then-insert.
"""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def new_api_key() -> str:
    """32 lowercase hex characters: the format the SDK and reference validate (``^[a-z0-9]{32}$``)."""
    return uuid.uuid4().hex


class Organization(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=64)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="metrics_organizations", blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class App(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="apps")
    name = models.CharField(max_length=64)
    api_key = models.CharField(max_length=32, unique=True, default=new_api_key)
    # Bumped by every key reset; SDK tokens carry the generation they were issued under
    # and stop working when it changes (revocation without a token list).
    key_generation = models.PositiveIntegerField(default=0)
    # Exact host (no port) the SDK's Origin must carry; empty = any origin.
    domain = models.CharField(max_length=256, blank=True, default="")
    interval = models.PositiveIntegerField(default=10000, help_text="getStats interval in ms sent to the SDK")
    recording = models.BooleanField(default=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


def token_digest(key: str) -> str:
    """What is stored of a dashboard token: its SHA-256 (the key is 160 random bits, no salt needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


class DashboardToken(models.Model):
    """A dashboard API token (``Authorization: Token <key>``); only its digest is stored."""

    digest = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="metrics_tokens")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"token of {self.user} ({self.digest[:8]}…)"


class Participant(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="participants")
    participant_id = models.CharField(max_length=64)
    participant_name = models.CharField(max_length=64, blank=True, default="")
    is_sfu = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["app", "participant_id"], name="metrics_participant_unique_id")]

    def __str__(self) -> str:
        return self.participant_name or self.participant_id


class Conference(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="conferences")
    conference_id = models.CharField(max_length=64)
    conference_name = models.CharField(max_length=64, blank=True, default="")
    participants = models.ManyToManyField(Participant, related_name="conferences", blank=True)
    start_time = models.DateTimeField(null=True, blank=True)  # first connection ever
    call_start = models.DateTimeField(null=True, blank=True)  # start of the current live stretch
    end_time = models.DateTimeField(null=True, blank=True)
    ongoing = models.BooleanField(default=False)
    duration = models.FloatField(default=0, help_text="seconds with at least one live connection")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["app", "conference_id"], name="metrics_conference_unique_id")]
        indexes = [models.Index(fields=["app", "-created_at"], name="metrics_conf_app_created")]

    def __str__(self) -> str:
        return self.conference_name or self.conference_id


class Session(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="sessions")
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="sessions")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="sessions")
    platform = models.JSONField(default=dict, blank=True)
    constraints = models.JSONField(default=dict, blank=True)
    devices = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    geo_ip = models.JSONField(default=dict, blank=True)
    app_version = models.CharField(max_length=16, blank=True, default="")
    webrtc_sdk = models.CharField(max_length=16, blank=True, default="")
    call_start = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["conference", "participant"], name="metrics_session_conf_part")]

    def __str__(self) -> str:
        return f"session {self.pk}"


class Connection(models.Model):
    class Type(models.TextChoices):
        HOST = "h", "host"
        SRFLX = "s", "srflx"
        PRFLX = "p", "prflx"
        RELAY = "r", "relay"

    STATES = ("new", "connecting", "connected", "disconnected", "failed", "closed")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="connections")
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="connections")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="connections")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="connections")
    peer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="peer_connections")
    type = models.CharField(max_length=1, choices=Type.choices, blank=True, default="")
    state = models.CharField(max_length=16, default="new")
    # {"negotiations": [{type, status, start_time, end_time, duration}], "established": bool}
    connection_info = models.JSONField(default=dict, blank=True)
    start_time = models.DateTimeField(default=timezone.now)
    end_time = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"connection {self.pk}"


class Track(models.Model):
    class Kind(models.TextChoices):
        AUDIO = "a", "audio"
        VIDEO = "v", "video"

    class Direction(models.TextChoices):
        INBOUND = "i", "inbound"
        OUTBOUND = "o", "outbound"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="tracks")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="tracks", null=True, blank=True)
    kind = models.CharField(max_length=1, choices=Kind.choices)
    direction = models.CharField(max_length=1, choices=Direction.choices, default=Direction.INBOUND)
    track_id = models.CharField(max_length=64)
    label = models.CharField(max_length=128, blank=True, default="")
    track_info = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["session", "track_id"], name="metrics_track_session_tid")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_direction_display()} {self.track_id}"


class GenericEvent(models.Model):
    """Every SDK event, by route. Stats are one row per POST (the whole parsed report)."""

    class Category(models.TextChoices):
        BROWSER = "B", "browser"
        GET_USER_MEDIA = "M", "getUserMedia"
        CONNECTION = "C", "connection"
        TRACK = "T", "track"
        STATS = "S", "stats"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="events")
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="events")
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="events")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="events")
    peer = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="peer_events", null=True, blank=True)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="events", null=True, blank=True)
    track = models.ForeignKey(Track, on_delete=models.SET_NULL, related_name="events", null=True, blank=True)
    category = models.CharField(max_length=1, choices=Category.choices)
    type = models.CharField(max_length=32)
    data = models.JSONField(default=dict, blank=True, null=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # The summary scan and the dashboard's event list.
            models.Index(fields=["conference", "category", "created_at"], name="metrics_event_conf_cat_time"),
            # Retention purge of raw stats.
            models.Index(fields=["category", "created_at"], name="metrics_event_cat_time"),
            models.Index(fields=["session", "category"], name="metrics_event_session_cat"),
        ]

    def __str__(self) -> str:
        return f"{self.get_category_display()} {self.type}"


# Connection.type from a stats report's local candidateType.
CANDIDATE_TYPES = {"host": "h", "srflx": "s", "prflx": "p", "relay": "r"}

ISSUES: dict[str, tuple[str, str, str]] = {
    # code: (type, title, explanation)
    "getusermedia_error": ("w", "getUserMedia error", "The browser refused or failed to open a camera or microphone."),
    "icecandidateerror": ("w", "ICE candidate error", "Gathering an ICE candidate failed (STUN/TURN server error)."),
    "connection_disconnected": ("w", "Connection disconnected", "The peer connection went to 'disconnected'."),
    "connection_failed": ("e", "Connection failed", "The peer connection went to 'failed'."),
    "ice_failed": ("e", "ICE failed", "ICE could not find a working candidate pair."),
    "multiple_rejoins": ("w", "Multiple rejoins", "The participant joined this conference more than once."),
    "tcp_used": ("w", "TCP used", "Media went over TCP, which adds latency under loss."),
    "turn_used": ("w", "TURN used", "Media was relayed through a TURN server."),
    "no_media_access": ("e", "No media access", "Every getUserMedia call of the session failed."),
    "no_connection": ("e", "No connection", "No peer connection of the session was ever established."),
    "low_emos": ("w", "Low audio quality", "Received audio scored an estimated MOS between 3 and 4."),
    "very_low_emos": ("e", "Very low audio quality", "Received audio scored an estimated MOS below 3."),
}
ONCE_PER_CONNECTION = ("tcp_used", "turn_used")
# Raised at endCall/unload, which the SDK retries: one per session however often it arrives.
ONCE_PER_SESSION = ("no_media_access", "no_connection", "multiple_rejoins")


class Issue(models.Model):
    class Type(models.TextChoices):
        WARNING = "w", "warning"
        ERROR = "e", "error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="issues")
    conference = models.ForeignKey(Conference, on_delete=models.CASCADE, related_name="issues")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="issues", null=True, blank=True)
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="issues", null=True, blank=True)
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="issues", null=True, blank=True)
    track = models.ForeignKey(Track, on_delete=models.SET_NULL, related_name="issues", null=True, blank=True)
    type = models.CharField(max_length=1, choices=Type.choices)
    code = models.CharField(max_length=32, db_index=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "code"],
                condition=Q(code__in=ONCE_PER_CONNECTION),
                name="metrics_issue_once_per_connection",
            ),
            models.UniqueConstraint(
                fields=["session", "code"],
                condition=Q(code__in=ONCE_PER_SESSION),
                name="metrics_issue_once_per_session",
            ),
        ]
        indexes = [models.Index(fields=["conference", "code"], name="metrics_issue_conf_code")]

    def __str__(self) -> str:
        return self.code

    @property
    def title(self) -> str:
        return ISSUES.get(self.code, ("", self.code, ""))[1]

    @property
    def explanation(self) -> str:
        return ISSUES.get(self.code, ("", "", ""))[2]


class Summary(models.Model):
    class Status(models.TextChoices):
        ONGOING = "o", "building"
        DONE = "d", "done"
        ERROR = "e", "error"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    conference = models.OneToOneField(Conference, on_delete=models.CASCADE, related_name="summary")
    status = models.CharField(max_length=1, choices=Status.choices, default=Status.ONGOING)
    version = models.PositiveSmallIntegerField(default=1)
    data = models.JSONField(default=dict, blank=True)
    # Stats rows up to this time are in ``data``; a later row makes the summary stale.
    stats_until = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"summary of {self.conference_id}"
