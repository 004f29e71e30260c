"""Wire formats of the media jobs' requests (spec 5.4–5.6, owt-compat §8.1–8.4):
streaming-ins, recordings and streaming-outs.

A streaming-in's request (§8.1) is validated into its job's ``spec``; its response is the
stream it publishes (``live_views.render_stream``). Recordings and streaming-outs are
server-side subscriptions (``streamengine.models.MediaJob``, kind ``recording`` or
``streaming-out``); their request is validated here into the job's ``spec`` and the job is
rendered as OWT's subscription abstract ``{id, media: {audio, video}}`` plus ``storage``
(recordings) or ``protocol``/``url``/``parameters`` (streaming-outs), and what OWT lacks:
the job's ``state``, ``reason``, ``progress`` (and a recording's ``download`` path).
"""

from __future__ import annotations

import copy
import re
import urllib.parse
from typing import Any

from rest_framework import serializers

from conference.exceptions import InvalidRequest
from conference.live_serializers import _operations
from owt.errors import describe_validation_error
from streamengine.jobs.streaming_out import local_playlist_path
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
    return _with_sources(validated(RecordingRequest, body), streams)


def _with_sources(spec: dict, streams: dict[str, Publication]) -> dict:
    """Each ``media.<kind>.from`` must name a stream of the room with that kind."""
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
PARAMETER_PATH = re.compile(r"^/media/(video)/parameters/(resolution|framerate|bitrate|keyFrameInterval)$")


def subscription_apply_patch(
    spec: dict, body: object, *, streams: dict[str, Publication], what: str, video_parameters: bool = False
) -> dict:
    """``PATCH`` ops on a server-side subscription (``what``: "recording", "streaming-out"):
    ``/media/<kind>/status``, ``/media/<kind>/from`` and, with ``video_parameters``,
    ``/media/video/parameters/<name>``."""
    updated = copy.deepcopy(spec)
    for index, operation in enumerate(_operations(body)):
        where, path, value = f"[{index}]", operation["path"], operation["value"]
        if operation["op"] != "replace":
            raise InvalidRequest(f'{where}.op: must be "replace"')
        match = STATUS_PATH.match(path) or FROM_PATH.match(path) or (video_parameters and PARAMETER_PATH.match(path))
        if not match:
            supported = "/media/audio|video/status or /from" + (", /media/video/parameters/…" * video_parameters)
            raise InvalidRequest(f"{where}.path: unsupported {path!r} (use {supported})")
        kind = match[1]
        if not updated["media"].get(kind):
            raise InvalidRequest(f"{where}.path: the {what} has no {kind}")
        if path.endswith("/status"):
            if value not in ("active", "inactive"):
                raise InvalidRequest(f'{where}.value: must be "active" or "inactive"')
            updated["media"][kind]["status"] = value
        elif path.endswith("/from"):
            source = streams.get(str(value).split("-")[0])
            if source is None or not any(t["type"] == kind for t in source.media.get("tracks", [])):
                raise InvalidRequest(f"{where}.value: no {kind} in stream {value!r} of this room")
            updated["media"][kind]["from"] = source.id
        else:
            parameters = {**(updated["media"]["video"].get("parameters") or {}), match[2]: value}
            parsed = VideoParameters(data=parameters)
            if not parsed.is_valid():
                raise InvalidRequest(f"{where}.value: {describe_validation_error(parsed.errors)}")
            updated["media"]["video"]["parameters"] = dict(parsed.validated_data)
    return updated


def recording_apply_patch(spec: dict, body: object, *, streams: dict[str, Publication]) -> dict:
    return subscription_apply_patch(spec, body, streams=streams, what="recording")


def streaming_out_apply_patch(spec: dict, body: object, *, streams: dict[str, Publication]) -> dict:
    return subscription_apply_patch(spec, body, streams=streams, what="streaming-out", video_parameters=True)


def _source_format(streams: dict[str, Publication], out: dict, kind: str) -> dict | None:
    source = streams.get(out["from"])
    track = next((t for t in (source.media.get("tracks", []) if source else []) if t["type"] == kind), None)
    return track.get("format") if track else None


def subscription_abstract(job: MediaJob, *, streams: dict[str, Publication]) -> dict:
    """OWT's subscription abstract (owt-compat §8.2), with the job's state."""
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
    abstract = {"id": job.id, "media": media, "state": job.state, "progress": job.progress}
    if job.reason:
        abstract["reason"] = job.reason
    return abstract


def recording_abstract(job: MediaJob, *, streams: dict[str, Publication]) -> dict:
    abstract = subscription_abstract(job, streams=streams)
    abstract["storage"] = job.result.get("storage", {"host": "", "file": ""})
    if job.result.get("files"):
        abstract["download"] = f"/v1/rooms/{job.domain_id}/recordings/{job.id}/file"
    return abstract


# Streaming-outs (spec 5.5, owt-compat §8.3).

PROTOCOLS = ("rtmp", "rtsp", "hls", "dash")
URL_SCHEMES = {"rtmp": ("rtmp", "rtmps"), "rtsp": ("rtsp",), "hls": ("http", "https"), "dash": ("http", "https")}
PROTOCOL_DEFAULTS = {
    "hls": {"method": "PUT", "hlsTime": 2, "hlsListSize": 5},
    "dash": {"method": "PUT", "dashSegDuration": 2, "dashWindowSize": 5},
}


def guess_protocol(url: str) -> str:
    """OWT's guess when ``protocol`` is missing: by the URL's scheme or extension."""
    path = urllib.parse.urlsplit(url).path
    for prefix, protocol in (("rtmp://", "rtmp"), ("rtmps://", "rtmp"), ("rtsp://", "rtsp")):
        if url.startswith(prefix):
            return protocol
    if path.endswith(".m3u8"):
        return "hls"
    if path.endswith(".mpd"):
        return "dash"
    return "unknown"


class Bitrate(serializers.Field):
    """Kbps (a number) or a multiple of the source's (``"x0.8"``)."""

    def to_internal_value(self, data: Any) -> float | str:
        kbps = isinstance(data, int | float) and not isinstance(data, bool) and 0 < data <= 100_000
        if kbps or isinstance(data, str) and re.fullmatch(r"x(0?\.\d+|1(\.0+)?)", data):
            return data
        raise serializers.ValidationError('must be a number (kbps) or a multiple like "x0.8"')

    def to_representation(self, value: Any) -> Any:
        return value


class Resolution(StrictDict):
    width = serializers.IntegerField(min_value=16, max_value=4096)
    height = serializers.IntegerField(min_value=16, max_value=4096)


class VideoParameters(StrictDict):
    """What the encoder is asked for; a superset of OWT's PATCH values (6…60 fps, 1…100 s)."""

    resolution = Resolution(required=False)
    framerate = serializers.IntegerField(required=False, min_value=1, max_value=60)
    bitrate = Bitrate(required=False)
    keyFrameInterval = serializers.FloatField(required=False, min_value=0.1, max_value=100)  # noqa: N815


class AacFormat(AudioFormat):
    codec = serializers.ChoiceField(choices=("aac",))


class H264Format(VideoFormat):
    codec = serializers.ChoiceField(choices=("h264",))


class StreamingAudioOut(AudioOut):
    format = AacFormat(required=False)


class StreamingVideoOut(VideoOut):
    format = H264Format(required=False)
    parameters = VideoParameters(required=False)


class StreamingOutMedia(OutMedia):
    audio = FalseOr(StreamingAudioOut)
    video = FalseOr(StreamingVideoOut)


class HlsParameters(StrictDict):
    method = serializers.ChoiceField(choices=("PUT", "POST"), required=False, default="PUT")
    hlsTime = serializers.IntegerField(required=False, default=2, min_value=1, max_value=60)  # noqa: N815
    hlsListSize = serializers.IntegerField(required=False, default=5, min_value=1, max_value=100)  # noqa: N815


class DashParameters(StrictDict):
    method = serializers.ChoiceField(choices=("PUT", "POST"), required=False, default="PUT")
    dashSegDuration = serializers.IntegerField(required=False, default=2, min_value=1, max_value=60)  # noqa: N815
    dashWindowSize = serializers.IntegerField(required=False, default=5, min_value=1, max_value=100)  # noqa: N815


class StreamingOutRequest(StrictDict):
    protocol = serializers.CharField(required=False)
    url = serializers.CharField(required=False, allow_blank=True, max_length=2048, default="")
    parameters = serializers.DictField(required=False)
    media = StreamingOutMedia()

    def validate(self, data: dict) -> dict:
        url = data["url"]
        protocol = data.get("protocol") or guess_protocol(url)
        if protocol not in PROTOCOLS:
            raise serializers.ValidationError(
                {"protocol": [f"must be one of {', '.join(PROTOCOLS)} (got {protocol!r})"]}
            )
        scheme = urllib.parse.urlsplit(url).scheme
        if url and scheme not in URL_SCHEMES[protocol] or not url and protocol in ("rtmp", "rtsp"):
            schemes = "/".join(f"{s}://" for s in URL_SCHEMES[protocol])
            local = " (or none: the portal serves it)" if protocol in PROTOCOL_DEFAULTS else ""
            raise serializers.ValidationError({"url": [f"a {protocol} output needs a {schemes} URL{local}"]})
        parameters = data.get("parameters") or {}
        if protocol in PROTOCOL_DEFAULTS:
            schema = HlsParameters if protocol == "hls" else DashParameters
            parsed = schema(data=parameters)
            if not parsed.is_valid():
                raise serializers.ValidationError({"parameters": describe_validation_error(parsed.errors)})
            parameters = dict(parsed.validated_data)
        elif parameters:
            raise serializers.ValidationError({"parameters": [f"a {protocol} output takes none"]})
        return {**data, "protocol": protocol, "parameters": parameters}


def streaming_out_spec(body: object, *, streams: dict[str, Publication]) -> dict:
    """Validate ``POST /streaming-outs`` into a job spec: AAC audio, H.264 video (OWT's only choice)."""
    spec = _with_sources(validated(StreamingOutRequest, body), streams)
    for kind, codec in (("audio", {"codec": "aac", "sampleRate": 48000, "channelNum": 2}), ("video", None)):
        if spec["media"][kind]:
            spec["media"][kind]["format"] = {
                **(codec or {"codec": "h264", "profile": "CB"}),
                **spec["media"][kind].get("format", {}),
            }
    return spec


def streaming_out_abstract(job: MediaJob, *, streams: dict[str, Publication], base_url: str = "") -> dict:
    """The abstract plus ``protocol``, ``url`` (a local playlist's on this portal) and ``parameters``."""
    abstract = subscription_abstract(job, streams=streams)
    protocol = job.spec["protocol"]
    url = job.spec.get("url") or f"{base_url}{local_playlist_path(job.domain_id, job.id, protocol)}"
    abstract.update(protocol=protocol, url=url, parameters=job.spec.get("parameters") or {})
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


class StreamingOutAbstractSerializer(serializers.Serializer):
    """The rendered form (documentation of :func:`streaming_out_abstract`)."""

    id = serializers.CharField()
    media = serializers.DictField(help_text="{audio: {from, format, status} | false, video: {…, parameters} | false}")
    protocol = serializers.ChoiceField(choices=PROTOCOLS)
    url = serializers.CharField(help_text="where it streams; a local HLS/DASH playlist's URL on this portal")
    parameters = serializers.DictField(
        help_text="hls: {method, hlsTime, hlsListSize}; dash: {method, dashSegDuration, dashWindowSize}"
    )
    state = serializers.ChoiceField(choices=MediaJob.State.choices)
    progress = serializers.DictField(help_text="{duration, frames, dropped, reconnects, last_error?}")
    reason = serializers.CharField(required=False, help_text="why it failed or ended")
