"""Requests for media jobs: what a streaming-in, a recording, a streaming-out or an analytics is asked to do.

Validated here into the job's ``spec`` (owt-compat §8.1–8.4), for every API that starts
them: the management API's room resources and the stream-engine API's publications and
subscriptions. Errors are 400/1301 naming the field (owt-compat §8.5 for analytics).
"""

from __future__ import annotations

import copy
import re
import urllib.parse
from typing import Any

from rest_framework import serializers

from owt.errors import describe_validation_error
from streamengine.exceptions import InvalidJobRequest
from streamengine.media.analytics import UnknownAlgorithm
from streamengine.media.analytics import resolve as resolve_algorithm
from streamengine.models import Publication
from streamengine.selectors import stream_id_of
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
        raise InvalidJobRequest(
            describe_validation_error(parsed.errors) if isinstance(body, dict) else "Body must be an object"
        )
    return copy.deepcopy(parsed.validated_data)


def recording_spec(body: object, *, streams: dict[str, Publication]) -> dict:
    """Validate ``POST /recordings`` into a job spec; sources must be streams of the room."""
    return with_sources(validated(RecordingRequest, body), streams)


def with_sources(spec: dict, streams: dict[str, Publication]) -> dict:
    """Each ``media.<kind>.from`` must name a stream of the room with that kind."""
    for kind in ("audio", "video"):
        out = spec["media"][kind]
        if out is False:
            continue
        source = streams.get(stream_id_of(out["from"], streams))
        if source is None or not any(t["type"] == kind for t in source.media.get("tracks", [])):
            raise InvalidJobRequest(f"media.{kind}.from: no {kind} in stream {out['from']!r} of this room")
        out["from"] = source.id
        out["status"] = "active"
    return spec


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
    spec = with_sources(validated(StreamingOutRequest, body), streams)
    for kind, codec in (("audio", {"codec": "aac", "sampleRate": 48000, "channelNum": 2}), ("video", None)):
        if spec["media"][kind]:
            spec["media"][kind]["format"] = {
                **(codec or {"codec": "h264", "profile": "CB"}),
                **spec["media"][kind].get("format", {}),
            }
    return spec


class StreamingInRequest(StrictDict):
    connection = StreamingInConnection()
    media = StreamingInMedia()
    attributes = serializers.DictField(required=False, default=dict)


def streaming_in_spec(body: object) -> dict:
    """Validate ``POST /streaming-ins`` (owt-compat §8.1) into a job spec."""
    return validated(StreamingInRequest, body)


# Analytics (spec 5.8, owt-compat §8.5).

ANALYTICS_VIDEO_CODECS = ("vp8", "h264")  # what the job's encoder (aiortc) can publish


class AnalyticsVideoFormat(VideoFormat):
    codec = serializers.ChoiceField(choices=ANALYTICS_VIDEO_CODECS)


class AnalyticsVideo(VideoOut):
    format = AnalyticsVideoFormat(required=False)


class AnalyticsMedia(StrictDict):
    video = AnalyticsVideo()
    audio = serializers.JSONField(required=False)  # accepted and ignored, as OWT does


class AnalyticsRequest(StrictDict):
    algorithm = serializers.CharField(max_length=128)
    media = AnalyticsMedia()


def analytics_spec(body: object, *, streams: dict[str, Publication]) -> dict:
    """Validate ``POST /analytics`` into a job spec: the algorithm by its id, the video source
    a stream of the room, the output format VP8 unless H.264 is asked for."""
    spec = validated(AnalyticsRequest, body)
    try:
        spec["algorithm"] = resolve_algorithm(spec["algorithm"])
    except UnknownAlgorithm as exc:
        raise InvalidJobRequest(f"algorithm: {exc.args[0]}") from exc
    video = spec["media"]["video"]
    spec["media"] = {"audio": False, "video": {**video, "format": video.get("format") or {"codec": "vp8"}}}
    return with_sources(spec, streams)


# SIP calls (spec 5.7, owt-compat §8.6). PJSIP's build here is audio only: video must be false.

SIP_URI = re.compile(r"^sips?:[^\s@]+@[^\s@]+$|^sips?:[^\s@]+$")


class SipMediaIn(StrictDict):
    audio = serializers.BooleanField()
    video = serializers.BooleanField()

    def validate(self, data: dict) -> dict:
        if data["audio"] is not True:
            raise serializers.ValidationError({"audio": ["must be true for sip calls"]})
        if data["video"]:
            raise serializers.ValidationError({"video": ["video is not supported (audio-only SIP calls)"]})
        return data


class SipAudioOut(StrictDict):
    def get_fields(self) -> dict:  # "from" is a Python keyword: declared here
        fields = super().get_fields()
        fields["from"] = serializers.CharField(max_length=64, required=False)
        return fields


class SipMediaOut(StrictDict):
    audio = SipAudioOut(required=False)
    video = serializers.JSONField(required=False)

    def validate(self, data: dict) -> dict:
        if data.get("video") not in (None, False):
            raise serializers.ValidationError({"video": ["video is not supported (audio-only SIP calls)"]})
        return data


class SipCallRequest(StrictDict):
    peerURI = serializers.CharField(max_length=512)  # noqa: N815
    mediaIn = SipMediaIn()  # noqa: N815
    mediaOut = SipMediaOut()  # noqa: N815

    def validate_peerURI(self, value: str) -> str:  # noqa: N802
        if not SIP_URI.match(value):
            raise serializers.ValidationError("must be a sip: or sips: URI")
        return value


def mixed_audio(streams: dict[str, Publication]) -> str | None:
    """What a SIP peer hears by default: the room's mixed stream with audio (``<room>-common``
    first), else None."""
    mixed = sorted(
        p.id
        for p in streams.values()
        if p.kind == "mixed" and any(t["type"] == "audio" for t in p.media.get("tracks", []))
    )
    return next((stream for stream in mixed if stream.endswith("-common")), mixed[0] if mixed else None)


def sip_dial_in_spec(*, caller: str, callee: str, streams: dict[str, Publication], **held: object) -> dict:
    """A call answered by the room's SIP agent: the caller hears the mixed audio (if any) until
    a PATCH chooses a stream; ``held`` says where the call lives (the agent's process)."""
    source = mixed_audio(streams)
    spec = {
        "type": "dial-in",
        "peerURI": caller,
        "callee": callee,
        "media": {"audio": {"from": source} if source else False, "video": False},
        "role": "sip",
        "participant": caller,
        **held,
    }
    return with_sources(spec, streams) if source else spec


def sip_call_spec(body: object, *, streams: dict[str, Publication], default_audio: str | None) -> dict:
    """Validate ``POST /sipcalls`` into a dial-out job spec. What the callee hears is
    ``mediaOut.audio.from`` (a stream of the room with audio), else ``default_audio`` (the
    room's mixed stream, if one is published), else nothing until a PATCH chooses one."""
    request = validated(SipCallRequest, body)
    source = (request["mediaOut"].get("audio") or {}).get("from") or default_audio
    spec = {
        "type": "dial-out",
        "peerURI": request["peerURI"],
        "media": {"audio": {"from": source} if source else False, "video": False},
    }
    if source:
        try:
            with_sources(spec, streams)
        except InvalidJobRequest as exc:
            raise InvalidJobRequest(f"mediaOut.{exc.message}") from exc
    return spec
