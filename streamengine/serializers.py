"""Wire formats of the stream-engine REST API (``/v1.1/stream-engine/...``).

The state objects are those of the OWT stream API specification, §5 (OWT's ``stateTypes.js``): publications
list their *source* tracks, subscriptions their *sink* tracks, and both say where they run
(``locality``: the media node and its agent).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from owt.parsers import QUERY_INTEGER_MAX
from streamengine.media.analytics.transcode import Transcode
from streamengine.models import MediaJob, Node, Participant, Publication, Subscription
from streamengine.selectors import processor_streams

KINDS = ("audio", "video")


def locality(node: Node | None) -> dict | None:
    return {"agent": node.agent, "node": node.id} if node is not None else None


def tracks_by_kind(media: dict, fields: tuple[str, ...]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    for track in media.get("tracks") or []:
        if track.get("type") in grouped:
            grouped[track["type"]].append({key: track[key] for key in fields if track.get(key) is not None})
    return grouped


class ListQuerySerializer(serializers.Serializer):
    """Pagination of every list: ``start`` (offset) and ``limit``, from the query string or the body."""

    start = serializers.IntegerField(min_value=0, max_value=QUERY_INTEGER_MAX, default=0)
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)


class ParticipantOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    domain = serializers.CharField(source="domain_id")
    portal = serializers.CharField()
    type = serializers.SerializerMethodField()
    notifying = serializers.SerializerMethodField()
    user = serializers.CharField()
    role = serializers.CharField()
    permission = serializers.JSONField()
    pubs = serializers.SerializerMethodField()
    subs = serializers.SerializerMethodField()
    locality = serializers.SerializerMethodField()

    def get_type(self, participant: Participant) -> str:
        # Every participant of this engine joined over WebRTC signaling (browsers, SDKs, media jobs).
        return "webrtc"

    def get_notifying(self, participant: Participant) -> bool:
        return bool(participant.domain.config.get("notifying", {}).get("participantActivities", True))

    def get_pubs(self, participant: Participant) -> list[str]:
        return [publication.id for publication in participant.publications.all()]

    def get_subs(self, participant: Participant) -> list[str]:
        return [subscription.id for subscription in participant.subscriptions.all()]

    def get_locality(self, participant: Participant) -> dict | None:
        return locality(participant.node or participant.domain.node)


class PublicationOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.SerializerMethodField()
    source = serializers.SerializerMethodField()
    info = serializers.JSONField()
    locality = serializers.SerializerMethodField()
    participant = serializers.CharField(source="participant_id", allow_null=True)
    domain = serializers.CharField(source="domain_id")

    def get_type(self, publication: Publication) -> str:
        return publication.info.get("type") or "webrtc"

    def get_source(self, publication: Publication) -> dict:
        source = tracks_by_kind(publication.media, ("id", "format", "parameters", "status"))
        source["data"] = [{"id": publication.id}] if publication.data else []
        return source

    def get_locality(self, publication: Publication) -> dict | None:
        return locality(publication.node)


class SubscriptionOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(source="kind")
    sink = serializers.SerializerMethodField()
    info = serializers.JSONField()
    locality = serializers.SerializerMethodField()
    participant = serializers.CharField(source="participant_id", allow_null=True)
    domain = serializers.CharField(source="domain_id")

    def get_sink(self, subscription: Subscription) -> dict:
        sink = tracks_by_kind(subscription.media, ("from", "format", "parameters", "status"))
        sink["data"] = [subscription.data] if subscription.data else []
        return sink

    def get_locality(self, subscription: Subscription) -> dict | None:
        return locality(subscription.node)


class NodeOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField(source="kind")
    agent = serializers.CharField()
    pubs = serializers.SerializerMethodField()
    subs = serializers.SerializerMethodField()
    streamAddr = serializers.JSONField(source="stream_addr")
    load = serializers.FloatField()
    embedded = serializers.BooleanField()
    heartbeat = serializers.DateTimeField(source="heartbeat_at")

    def get_pubs(self, node: Node) -> list[str]:
        return [publication.id for publication in node.publications.all()]

    def get_subs(self, node: Node) -> list[str]:
        return [subscription.id for subscription in node.subscriptions.all()]


class TokenInputSerializer(serializers.Serializer):
    domain = serializers.CharField(max_length=64)
    user = serializers.CharField(max_length=255, required=False, allow_blank=True)
    role = serializers.CharField(max_length=255, required=False, allow_blank=True)
    preference = serializers.DictField(required=False, child=serializers.CharField(max_length=255))


class StrictDict(serializers.Serializer):
    """Refuses keys it does not declare (OWT's schemas allow no other keys)."""

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({unknown[0]: ["is not allowed"]})
        return dict(super().to_internal_value(data))


@extend_schema_field({"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["auto"]}]})
class AutoOrBool(serializers.Field):
    """``"auto"`` (if the source has it), ``true`` (required) or ``false``; nothing else."""

    def to_internal_value(self, data: Any) -> str | bool:
        if data is True or data is False or data == "auto":
            return data
        raise serializers.ValidationError('must be "auto", true or false')

    def to_representation(self, value: Any) -> Any:
        return value


class StreamingInConnection(StrictDict):
    url = serializers.CharField(max_length=2048)
    transportProtocol = serializers.ChoiceField(choices=("tcp", "udp"), required=False, default="tcp")  # noqa: N815
    bufferSize = serializers.IntegerField(required=False, default=8192, min_value=1, max_value=64 * 1024 * 1024)  # noqa: N815
    origin = serializers.DictField(required=False)  # OWT's placement hint; one cluster here


class StreamingInMedia(StrictDict):
    audio = AutoOrBool()
    video = AutoOrBool()

    def validate(self, data: dict) -> dict:
        if data["audio"] is False and data["video"] is False:
            raise serializers.ValidationError("media: audio and video cannot both be false")
        return data


class StreamingPublicationInputSerializer(StrictDict):
    """``POST publications`` of type ``streaming`` (a streaming-in: spec 5.2.2's PublishRequest)."""

    type = serializers.ChoiceField(choices=["streaming"], help_text="other types are published over signaling")
    participant = serializers.CharField(max_length=64, help_text="the domain (room) id, standing for its participant")
    media = StreamingInMedia()
    info = StreamingInConnection(help_text="{url, transportProtocol?, bufferSize?}: the source")
    attributes = serializers.DictField(required=False, default=dict)


class JobSubscriptionInputSerializer(StrictDict):
    """``POST subscriptions`` of type ``recording`` or ``streaming`` (spec 5.3.2's SubscribeRequest):
    a recording or a streaming-out job; ``media`` and ``info`` are checked by the job's request."""

    type = serializers.ChoiceField(choices=["recording", "streaming"], help_text="webrtc ones come over signaling")
    participant = serializers.CharField(max_length=64, help_text="the domain (room) id, standing for its participant")
    media = serializers.DictField(
        help_text="{audio: {from, format?} | false, video: {from, format?, parameters?} | false}"
    )
    info = serializers.DictField(
        required=False, default=dict, help_text="recording: {container?}; streaming: {protocol?, url, parameters?}"
    )


@extend_schema_field({"type": "boolean"})
class StrictBool(serializers.Field):
    """true or false, not DRF's "yes"/"1"/"on"."""

    def to_internal_value(self, data: Any) -> bool:
        if data is True or data is False:
            return data
        raise serializers.ValidationError("must be true or false")

    def to_representation(self, value: Any) -> Any:
        return value


class MixingColor(StrictDict):
    r = serializers.IntegerField(min_value=0, max_value=255, default=0)
    g = serializers.IntegerField(min_value=0, max_value=255, default=0)
    b = serializers.IntegerField(min_value=0, max_value=255, default=0)


class MixingResolution(StrictDict):
    width = serializers.IntegerField(min_value=16, max_value=3840)
    height = serializers.IntegerField(min_value=16, max_value=2160)


class MixingVideoParameters(StrictDict):
    resolution = MixingResolution(required=False)
    framerate = serializers.ChoiceField(choices=[6, 12, 15, 24, 30, 48, 60], required=False)
    bitrate = serializers.FloatField(min_value=1, max_value=1_000_000, required=False, help_text="kbps")
    keyFrameInterval = serializers.ChoiceField(choices=[1, 2, 5, 30, 100], required=False)  # noqa: N815


class MixingLayout(StrictDict):
    fitPolicy = serializers.ChoiceField(choices=["letterbox", "crop"], required=False)  # noqa: N815
    templates = serializers.ListField(
        child=serializers.DictField(), required=False, max_length=64, help_text="[{region: [Region]}] (custom only)"
    )


class VideoMixingAttributes(StrictDict):
    """``mixing`` of a ``video`` processor: the view's video (spec 5.4.2)."""

    id = serializers.CharField(max_length=64, required=False)
    view = serializers.CharField(max_length=64)
    maxInput = serializers.IntegerField(min_value=1, max_value=256, required=False)  # noqa: N815
    bgColor = MixingColor(required=False)  # noqa: N815
    parameters = MixingVideoParameters(required=False)
    layout = MixingLayout(required=False)
    format = serializers.DictField(required=False, help_text="{codec: vp8|vp9|h264}")


class AudioMixingAttributes(StrictDict):
    """``mixing`` of an ``audio`` processor: the view's audio."""

    id = serializers.CharField(max_length=64, required=False)
    view = serializers.CharField(max_length=64)
    format = serializers.DictField(required=False, help_text="{codec: opus, sampleRate?, channelNum?}")
    vad = StrictBool(required=False)


class AudioSelectingAttributes(StrictDict):
    id = serializers.CharField(max_length=64, required=False)
    activeStreamIds = serializers.ListField(  # noqa: N815
        child=serializers.CharField(max_length=64), required=False, max_length=16, help_text="ids of the outputs"
    )


class ProcessorInputSerializer(StrictDict):
    """``POST processors`` (spec 5.4.2's ProcessorRequest): exactly one of the type's attributes."""

    id = serializers.CharField(max_length=64, required=False)
    type = serializers.ChoiceField(choices=["video", "audio", "analytics"])
    participant = serializers.CharField(max_length=64, help_text="the domain (room) id, standing for its participant")
    mediaPreference = serializers.DictField(required=False)  # noqa: N815
    mixing = serializers.DictField(required=False)
    transcoding = serializers.DictField(required=False)
    selecting = AudioSelectingAttributes(required=False)
    analytics = serializers.DictField(required=False)

    def validate(self, data: dict) -> dict:
        given = [name for name in ("mixing", "transcoding", "selecting", "analytics") if name in data]
        allowed = {"video": {"mixing", "transcoding"}, "audio": {"mixing", "transcoding", "selecting"}}
        allowed["analytics"] = {"analytics"}
        if len(given) != 1 or given[0] not in allowed[data["type"]]:
            names = " or ".join(sorted(allowed[data["type"]]))
            raise serializers.ValidationError(f"a {data['type']} processor takes exactly one of: {names}")
        if "mixing" in data:
            nested = (VideoMixingAttributes if data["type"] == "video" else AudioMixingAttributes)(data=data["mixing"])
            nested.is_valid(raise_exception=True)
            data["mixing"] = nested.validated_data
        return data


TRANSCODE_ALGORITHM = Transcode.id


class ProcessorOutputSerializer(serializers.Serializer):
    """``object(Processor)`` of a media job that processes streams: a view's mixer (type
    ``video``; it mixes both media in one job, so its outputs carry the audio too), a video
    transcoder (an analytics job with the identity algorithm) or an analytics job."""

    id = serializers.CharField()
    type = serializers.SerializerMethodField()
    inputs = serializers.SerializerMethodField()
    outputs = serializers.SerializerMethodField()
    info = serializers.SerializerMethodField()
    locality = serializers.SerializerMethodField()
    participant = serializers.CharField(source="domain_id")
    domain = serializers.CharField(source="domain_id")

    def get_type(self, job: MediaJob) -> str:
        if job.kind == "mixing" or job.spec.get("algorithm") == TRANSCODE_ALGORITHM:
            return "video"
        return "audio" if job.kind == "audio-selecting" else "analytics"

    def get_inputs(self, job: MediaJob) -> dict:
        return processor_streams(job)[0]

    def get_outputs(self, job: MediaJob) -> dict:
        outputs: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        for publication in processor_streams(job)[1]:
            for kind, tracks in tracks_by_kind(publication.media, ("id", "format", "parameters", "status")).items():
                outputs[kind] += tracks
        return {**outputs, "data": []}

    def get_info(self, job: MediaJob) -> dict:
        if job.kind == "mixing":
            attributes = {"mixing": {"id": job.id, "view": job.spec.get("view")}}
        elif job.kind == "audio-selecting":
            streams = (job.result or {}).get("streams", [])
            attributes = {"selecting": {"id": job.id, "activeStreamIds": streams}}
            attributes["selecting"]["selected"] = job.progress.get("selected", [])
        elif job.spec.get("algorithm") == TRANSCODE_ALGORITHM:
            attributes = {"transcoding": {"id": job.id, **job.spec["media"]["video"]}}
        else:
            attributes = {"analytics": {"id": job.id, "algorithm": job.spec.get("algorithm")}}
        return {**attributes, "state": job.state, "progress": job.progress}

    def get_locality(self, job: MediaJob) -> dict:
        return {"agent": "media-worker", "node": job.worker}
