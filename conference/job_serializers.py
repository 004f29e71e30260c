"""Wire formats of the media jobs' requests (spec 5.4–5.6, owt-compat §8.1–8.4): streaming-ins, recordings.

A streaming-in's request (§8.1) is validated into its job's ``spec``; its response is the
stream it publishes (``live_views.render_stream``). A recording is a media job (``streamengine.models.MediaJob``, kind ``recording``); its
request is validated here into the job's ``spec`` and the job is rendered as OWT's
subscription abstract ``{id, media: {audio, video}, storage}`` plus what OWT lacks: the
job's ``state``, ``reason``, ``progress`` and a ``download`` path for the file.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from rest_framework import serializers

from conference.exceptions import InvalidRequest
from conference.live_serializers import _operations
from owt.errors import describe_validation_error
from streamengine.models import MediaJob, Publication
from streamengine.serializers import StreamingInConnection, StreamingInMedia, StrictDict

RECORDING_AUDIO_CODECS = ("pcmu", "pcma", "opus", "aac")
VIDEO_CODECS = ("h264", "h265", "vp8", "vp9")
CONTAINERS = ("mp4", "mkv", "ts", "auto")


class AudioFormat(StrictDict):
    codec = serializers.ChoiceField(choices=RECORDING_AUDIO_CODECS)
    sampleRate = serializers.IntegerField(required=False, min_value=8000, max_value=192000)  # noqa: N815
    channelNum = serializers.IntegerField(required=False, min_value=1, max_value=8)  # noqa: N815


class VideoFormat(StrictDict):
    codec = serializers.ChoiceField(choices=VIDEO_CODECS)
    profile = serializers.ChoiceField(choices=("B", "CB", "M", "H", "E"), required=False)


class AudioOut(StrictDict):
    format = AudioFormat(required=False)

    def get_fields(self) -> dict:  # "from" is a Python keyword: declared here
        fields = super().get_fields()
        fields["from"] = serializers.CharField(max_length=64)
        return fields


class VideoOut(StrictDict):
    format = VideoFormat(required=False)
    parameters = serializers.DictField(required=False)

    def get_fields(self) -> dict:  # "from" is a Python keyword: declared here
        fields = super().get_fields()
        fields["from"] = serializers.CharField(max_length=64)
        return fields


class FalseOr(serializers.Field):
    """``false`` (this kind is not wanted) or the nested object."""

    def __init__(self, nested: type[serializers.Serializer], **kwargs: Any) -> None:
        self.nested = nested
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict | bool:
        if data is False:
            return False
        nested = self.nested(data=data)
        if not nested.is_valid():
            raise serializers.ValidationError(describe_validation_error(nested.errors))
        return nested.validated_data

    def to_representation(self, value: Any) -> Any:
        return value


class OutMedia(StrictDict):
    audio = FalseOr(AudioOut)
    video = FalseOr(VideoOut)

    def validate(self, data: dict) -> dict:
        if data["audio"] is False and data["video"] is False:
            raise serializers.ValidationError("media: audio and video cannot both be false")
        return data


class RecordingRequest(StrictDict):
    container = serializers.ChoiceField(choices=CONTAINERS, required=False, default="auto")
    media = OutMedia()


def validated(request: type[serializers.Serializer], body: object) -> dict:
    """``body`` checked by ``request`` (400/1301 naming the field), as a dict of its own."""
    parsed = request(data=body)
    if not isinstance(body, dict) or not parsed.is_valid():
        raise InvalidRequest(
            describe_validation_error(parsed.errors) if isinstance(body, dict) else "Body must be an object"
        )
    return copy.deepcopy(parsed.validated_data)


def recording_spec(body: object, *, streams: dict[str, Publication]) -> dict:
    """Validate ``POST /recordings`` into a job spec; sources must be streams of the room."""
    spec = validated(RecordingRequest, body)
    for kind in ("audio", "video"):
        out = spec["media"][kind]
        if out is False:
            continue
        source = streams.get(str(out["from"]).split("-")[0])
        if source is None or not any(t["type"] == kind for t in source.media.get("tracks", [])):
            raise InvalidRequest(f"media.{kind}.from: no {kind} in stream {out['from']!r} of this room")
        out["from"] = source.id
        out["status"] = "active"
    return spec


STATUS_PATH = re.compile(r"^/media/(audio|video)/status$")
FROM_PATH = re.compile(r"^/media/(audio|video)/from$")


def recording_apply_patch(spec: dict, body: object, *, streams: dict[str, Publication]) -> dict:
    """``PATCH`` ops on a recording: ``/media/<kind>/status`` and ``/media/<kind>/from``."""
    updated = copy.deepcopy(spec)
    for index, operation in enumerate(_operations(body)):
        where, path, value = f"[{index}]", operation["path"], operation["value"]
        if operation["op"] != "replace":
            raise InvalidRequest(f'{where}.op: must be "replace"')
        match = STATUS_PATH.match(path) or FROM_PATH.match(path)
        if match is None:
            raise InvalidRequest(f"{where}.path: unsupported {path!r} (use /media/audio|video/status or /from)")
        kind = match[1]
        if not updated["media"].get(kind):
            raise InvalidRequest(f"{where}.path: the recording has no {kind}")
        if path.endswith("/status"):
            if value not in ("active", "inactive"):
                raise InvalidRequest(f'{where}.value: must be "active" or "inactive"')
            updated["media"][kind]["status"] = value
        else:
            source = streams.get(str(value).split("-")[0])
            if source is None or not any(t["type"] == kind for t in source.media.get("tracks", [])):
                raise InvalidRequest(f"{where}.value: no {kind} in stream {value!r} of this room")
            updated["media"][kind]["from"] = source.id
    return updated


def _source_format(streams: dict[str, Publication], out: dict, kind: str) -> dict | None:
    source = streams.get(out["from"])
    track = next((t for t in (source.media.get("tracks", []) if source else []) if t["type"] == kind), None)
    return track.get("format") if track else None


def recording_abstract(job: MediaJob, *, streams: dict[str, Publication]) -> dict:
    """OWT's subscription abstract of a recording (owt-compat §8.2), with the job's state."""
    media = {}
    for kind in ("audio", "video"):
        out = job.spec["media"].get(kind)
        if not out:
            media[kind] = False
            continue
        entry = {"from": out["from"], "status": out.get("status", "active")}
        entry["format"] = out.get("format") or _source_format(streams, out, kind) or {}
        if kind == "video" and out.get("parameters"):
            entry["parameters"] = out["parameters"]
        media[kind] = entry
    abstract = {
        "id": job.id,
        "media": media,
        "storage": job.result.get("storage", {"host": "", "file": ""}),
        "state": job.state,
        "progress": job.progress,
    }
    if job.reason:
        abstract["reason"] = job.reason
    if job.result.get("files"):
        abstract["download"] = f"/v1/rooms/{job.domain_id}/recordings/{job.id}/file"
    return abstract


class RecordingAbstractSerializer(serializers.Serializer):
    """The rendered form (documentation of :func:`recording_abstract`)."""

    id = serializers.CharField()
    media = serializers.DictField(help_text="{audio: {from, format, status} | false, video: {…} | false}")
    storage = serializers.DictField(help_text="{host, file}: where the worker writes the file")
    state = serializers.ChoiceField(choices=MediaJob.State.choices)
    progress = serializers.DictField(help_text="{duration, bytes, frames: {audio, video}, last_error?}")
    reason = serializers.CharField(required=False, help_text="why it failed or ended")
    download = serializers.CharField(required=False, help_text="path of the file download (MAuth)")


class StreamingInRequest(StrictDict):
    connection = StreamingInConnection()
    media = StreamingInMedia()
    attributes = serializers.DictField(required=False, default=dict)


def streaming_in_spec(body: object) -> dict:
    """Validate ``POST /streaming-ins`` (owt-compat §8.1) into a job spec."""
    return validated(StreamingInRequest, body)
