"""The egress API's wire formats: the start request (validated, defaults filled in), the
task as status/list render it, and the webhook body.

Validation follows the original's rules (``request_id`` ``^[0-9a-zA-Z]{1,32}$``, channel
``^[a-zA-Z0-9_\\-.:]+$`` up to 64, up to 32 ``users`` of ``^[a-zA-Z0-9_\\-]+$``) with the
inconsistencies it has resolved: ``users`` is what is validated and used, ``freestyle``
needs ``url`` and nothing else, ``access_token`` and ``workerUid`` are optional (the task's
worker joins with an internal credential of ours). Unlike the original, ``format``,
``video`` and ``audio`` are honoured per task, so they are validated too.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from egress.models import EgressTask

NAME = r"^[a-zA-Z0-9_\-]+$"
FORMATS = ("hls", "mp4")
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
# The original's defaults: native from egress_config.yaml, web from the flexible recorder's.
NATIVE_DEFAULTS = {"width": 1280, "height": 720, "frameRate": 30, "bitrate": 2000}
WEB_DEFAULTS = {"width": 1280, "height": 720, "frameRate": 15, "bitrate": 800}
AUDIO_DEFAULTS = {"sampleRate": 48000, "channels": 2, "bitrate": 128}


class VideoSerializer(serializers.Serializer):
    width = serializers.IntegerField(min_value=16, max_value=1920, required=False)
    height = serializers.IntegerField(min_value=16, max_value=1920, required=False)
    frameRate = serializers.IntegerField(min_value=1, max_value=60, required=False)
    bitrate = serializers.IntegerField(min_value=50, max_value=20000, required=False, help_text="kbps")

    def validate(self, attrs: dict) -> dict:
        for side in ("width", "height"):
            if side in attrs:
                attrs[side] = attrs[side] // 2 * 2  # 4:2:0 pictures have even sides
        return attrs


class AudioSerializer(serializers.Serializer):
    sampleRate = serializers.ChoiceField(choices=SAMPLE_RATES, required=False)
    channels = serializers.ChoiceField(choices=(1, 2), required=False)
    bitrate = serializers.IntegerField(min_value=16, max_value=512, required=False, help_text="kbps")


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": ["hls", "mp4", "hls+mp4"]},
            {"type": "array", "items": {"type": "string", "enum": list(FORMATS)}},
        ]
    }
)
class FormatField(serializers.Field):
    """``"hls"``, ``"mp4"``, ``"hls+mp4"`` or a list of them: the list of outputs."""

    default_error_messages = {"invalid": "format must be hls, mp4, hls+mp4 or a list of them"}

    def to_internal_value(self, data: object) -> list[str]:
        values = data.split("+") if isinstance(data, str) else data
        if not isinstance(values, list) or not values or any(v not in FORMATS for v in values):
            self.fail("invalid")
        return sorted(set(values), key=FORMATS.index)

    def to_representation(self, value: list[str]) -> str:
        return "+".join(value)


class PayloadSerializer(serializers.Serializer):
    layout = serializers.ChoiceField(
        choices=[*EgressTask.Layout.values, "grid"], default="flat", help_text="grid is flat's other name"
    )
    channel = serializers.RegexField(r"^[a-zA-Z0-9_\-.:]+$", max_length=64, required=False)
    access_token = serializers.CharField(min_length=10, max_length=512, required=False, write_only=True)
    workerUid = serializers.IntegerField(min_value=1, max_value=999_999_999, required=False)
    users = serializers.ListField(
        child=serializers.RegexField(NAME, max_length=32), max_length=32, required=False, default=list
    )
    url = serializers.URLField(max_length=1024, required=False)
    webGL = serializers.BooleanField(default=False)
    filename_pattern = serializers.RegexField(r"^[A-Za-z0-9_.{}\-]+$", max_length=128, required=False)
    format = FormatField(default=["hls"])
    segment_duration = serializers.IntegerField(min_value=1, max_value=60, default=6, help_text="HLS segment, s")
    video = VideoSerializer(required=False, default=dict)
    audio = AudioSerializer(required=False, default=dict)
    max_duration_s = serializers.IntegerField(min_value=1, required=False)
    max_idle_s = serializers.IntegerField(min_value=1, max_value=86400, default=30)

    def validate_url(self, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise serializers.ValidationError("url must be http(s)")
        return value

    def validate(self, attrs: dict) -> dict:
        if attrs["layout"] in ("grid",):
            attrs["layout"] = "flat"
        web = attrs["layout"] == "freestyle"
        if web and not attrs.get("url") and not attrs.get("channel"):
            raise serializers.ValidationError(
                {"url": "url (or a channel, to record the room's viewer page) is required for the freestyle layout"}
            )
        if not web and not attrs.get("channel"):
            raise serializers.ValidationError({"channel": "channel is required in payload"})
        if not web:
            attrs.pop("url", None)
        limit = settings.EGRESS_MAX_DURATION_SECONDS
        attrs["max_duration_s"] = min(attrs.get("max_duration_s") or limit, limit)
        attrs["video"] = {**(WEB_DEFAULTS if web else NATIVE_DEFAULTS), **attrs["video"]}
        attrs["audio"] = {**AUDIO_DEFAULTS, **attrs["audio"]}
        attrs.setdefault("filename_pattern", "web_{date}_{time}" if web else "{channel}_{date}_{time}")
        return attrs


class StartTaskSerializer(serializers.Serializer):
    request_id = serializers.RegexField(r"^[0-9a-zA-Z]{1,32}$")
    cmd = serializers.ChoiceField(choices=["record"], help_text="snapshot, rtmp and whip are not offered")
    payload = PayloadSerializer()


class RequestIdSerializer(serializers.Serializer):
    """Stop and status bodies: only an optional ``request_id`` to echo."""

    request_id = serializers.RegexField(r"^[0-9a-zA-Z]{1,32}$", required=False)


class TaskSerializer(serializers.ModelSerializer):
    """A task as status and list render it (the spec's shape, with LiveKit-like extras)."""

    task_id = serializers.CharField(source="id")
    payload = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    retry_count = serializers.SerializerMethodField()
    recording = serializers.SerializerMethodField(
        help_text="Wall-clock {started, ended} (Unix s) of what the files hold"
    )

    class Meta:
        model = EgressTask
        fields = [
            "task_id",
            "request_id",
            "cmd",
            "status",
            "message",
            "payload",
            "progress",
            "retry_count",
            "recording",
            "created_at",
            "started_at",
            "ended_at",
        ]

    def get_payload(self, task: EgressTask) -> dict:
        """The request as it runs, with ``files``: what the task has written so far."""
        files = [f.name for f in task.files.all()]
        if not files and task.job is not None:
            files = list(task.job.progress.get("files", []))
        return {**task.payload, "format": "+".join(task.payload["format"]), "files": files}

    def get_progress(self, task: EgressTask) -> dict:
        if task.job is None:
            return {}
        progress = task.job.progress
        return {key: progress[key] for key in ("duration", "outputs", "waiting", "last_error") if key in progress}

    def get_recording(self, task: EgressTask) -> dict:
        return task.job.result.get("recording", {}) if task.job is not None else {}

    def get_retry_count(self, task: EgressTask) -> int:
        return max(task.job.attempt - 1, 0) if task.job is not None else 0


class TaskStartedSerializer(serializers.Serializer):
    request_id = serializers.CharField()
    task_id = serializers.CharField()
    status = serializers.CharField()


class FileSerializer(serializers.Serializer):
    name = serializers.CharField()
    kind = serializers.CharField()
    user = serializers.CharField()
    size = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, file: object) -> str:
        request = self.context["request"]
        task = file.task
        return request.build_absolute_uri(f"/egress/v1/{task.service_id}/tasks/{task.id}/files/{file.name}")


class WebhookEndpointSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=1024)
    secret = serializers.CharField(min_length=16, max_length=128, required=False, write_only=True)
    active = serializers.BooleanField(default=True)
