"""Media jobs of a room run by the Celery workers: streaming-ins (spec 5.4), streaming-outs
(5.5), recordings (5.6) and analytics (5.8).

``POST /streaming-ins`` checks the URL (SSRF policy) and creates a ``streaming-in`` job; it
answers once a worker has published the source into the room, with that stream (as
``GET /streams/{id}`` renders it; ``streamengine.jobs.awaiting``), or with the job's reason
(1201, HTTP 503). ``DELETE /streaming-ins/{id}`` unpublishes the stream, which stops the job.

Recordings and streaming-outs are server-side subscriptions.

``POST`` validates the request and creates the job (``streamengine.jobs.services``); a media
worker joins the room and writes the file or the stream; ``GET`` shows its state and
progress while it runs; ``PATCH`` switches sources, pauses a track or (streaming-outs)
changes the video parameters live; ``DELETE`` stops it (files and playlists are closed
properly; an id of the other kind: ``Delete type not match``, as OWT); ``GET …/file``
downloads a recording (MAuth, like every route here). The two kinds differ only in their
wire format (:class:`JobKind`); the views are one pair.

SIP calls (5.7) are server-side subscriptions too, that also publish the callee's audio:
``POST`` dials out at once and answers with the call (``call.state`` follows: calling,
ringing, connected …); ``PATCH /output/media/audio/from`` changes what the callee hears;
``DELETE`` hangs up.

Analytics are the same pair without PATCH: ``POST`` answers with the abstract at once (the
stream it publishes, with the analytics' id, follows within seconds), ``DELETE`` stops the
job, which unpublishes the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from django.conf import settings
from django.core.files.storage import storages
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conference.exceptions import InvalidRequest
from conference.job_serializers import (
    AnalyticsAbstractSerializer,
    RecordingAbstractSerializer,
    SipCallAbstractSerializer,
    StreamingOutAbstractSerializer,
    analytics_abstract,
    recording_abstract,
    recording_apply_patch,
    sip_call_abstract,
    sip_call_apply_patch,
    streaming_out_abstract,
    streaming_out_apply_patch,
)
from conference.live_serializers import StreamInfoSerializer
from conference.live_views import LiveRoomView, render_stream
from conference.models import Room
from streamengine import selectors as engine_selectors
from streamengine import services as engine
from streamengine.exceptions import JobNotFound, StreamNotFound
from streamengine.jobs import services as jobs
from streamengine.jobs.analytics import AnalyticsJob
from streamengine.jobs.awaiting import StreamPending, awaiting_stream
from streamengine.jobs.recording import RecordingJob
from streamengine.jobs.requests import (
    analytics_spec,
    mixed_audio,
    recording_spec,
    sip_call_spec,
    streaming_in_spec,
    streaming_out_spec,
)
from streamengine.jobs.runtime import JobRunner
from streamengine.jobs.sip import SipCallJob
from streamengine.jobs.streaming_in import StreamingInJob, check_source_url
from streamengine.jobs.streaming_out import StreamingOutJob
from streamengine.models import MediaJob, Publication

RECORDING_EXAMPLE = OpenApiExample(
    "record a stream's audio and video into Matroska",
    value={"container": "mkv", "media": {"audio": {"from": "<streamId>"}, "video": {"from": "<streamId>"}}},
    request_only=True,
)
STREAMING_OUT_EXAMPLE = OpenApiExample(
    "push a stream to an RTMP server at 640x480",
    value={
        "protocol": "rtmp",
        "url": "rtmp://live.example.com/app/key",
        "media": {
            "audio": {"from": "<streamId>"},
            "video": {"from": "<streamId>", "parameters": {"resolution": {"width": 640, "height": 480}}},
        },
    },
    request_only=True,
)

STREAMING_IN_EXAMPLE = OpenApiExample(
    "pull an RTSP camera (audio if it has some)",
    value={
        "connection": {"url": "rtsp://camera.example.org/live", "transportProtocol": "tcp", "bufferSize": 8192},
        "media": {"audio": "auto", "video": True},
    },
    request_only=True,
)
ANALYTICS_EXAMPLE = OpenApiExample(
    "box what moves in a stream",
    value={"algorithm": "motion", "media": {"video": {"from": "<streamId>", "format": {"codec": "vp8"}}}},
    request_only=True,
)


def room_streams(room: Room) -> dict[str, Publication]:
    return {p.id: p for p in engine_selectors.domain_streams(domain_id=room.id)}


@dataclass(frozen=True)
class JobKind:
    """What differs between the kinds of server-side subscription: their wire format."""

    job: type[JobRunner]
    name: str  # "Recording": the not-found message
    spec: Callable[..., dict]  # (body, *, streams) → the job's spec
    abstract: Callable[..., dict]  # (job, *, streams, request) → the wire form
    apply_patch: Callable[..., dict] | None = None  # (spec, body, *, streams) → the new spec; None: no PATCH


RECORDINGS = JobKind(
    job=RecordingJob,
    name="Recording",
    spec=recording_spec,
    apply_patch=recording_apply_patch,
    abstract=lambda job, *, streams, request: recording_abstract(job, streams=streams),
)
STREAMING_OUTS = JobKind(
    job=StreamingOutJob,
    name="Streaming-out",
    spec=streaming_out_spec,
    apply_patch=streaming_out_apply_patch,
    abstract=lambda job, *, streams, request: streaming_out_abstract(
        job, streams=streams, base_url=request.build_absolute_uri("/").rstrip("/")
    ),
)
ANALYTICS = JobKind(
    job=AnalyticsJob,
    name="Analytics",
    spec=analytics_spec,
    abstract=lambda job, *, streams, request: analytics_abstract(job),
)


SIP_CALL_EXAMPLE = OpenApiExample(
    "call a phone; it hears the room's mixed audio",
    value={"peerURI": "sip:alice@sip.example.org", "mediaIn": {"audio": True, "video": False}, "mediaOut": {}},
    request_only=True,
)


def sip_call_spec_for(body: object, *, streams: dict[str, Publication]) -> dict:
    """The callee hears the room's mixed audio unless ``mediaOut.audio.from`` says otherwise."""
    return sip_call_spec(body, streams=streams, default_audio=mixed_audio(streams))


def render_sip_call(job: MediaJob, *, streams: dict[str, Publication], request: Request) -> dict:
    publication = streams.get(job.result.get("stream", ""))
    version = request.parser_context["kwargs"]["version"]
    return sip_call_abstract(job, input_stream=render_stream(publication, version) if publication else None)


SIP_CALLS = JobKind(
    job=SipCallJob,
    name="SIP call",
    spec=sip_call_spec_for,
    apply_patch=sip_call_apply_patch,
    abstract=render_sip_call,
)


def job_in(room: Room, job_id: str, kind: JobKind) -> MediaJob:
    job = MediaJob.objects.filter(id=job_id, domain_id=room.id, kind=kind.job.kind).first()
    if job is None:
        raise JobNotFound(f"{kind.name} not found")
    return job


class SubscriptionListView(LiveRoomView):
    jobs: ClassVar[JobKind]

    def get(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        streams = room_streams(room)
        found = MediaJob.objects.filter(domain_id=room.id, kind=self.jobs.job.kind).order_by("created_at")
        return Response([self.jobs.abstract(job, streams=streams, request=request) for job in found])

    def post(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        streams = room_streams(room)
        spec = self.jobs.spec(request.data, streams=streams)
        job = jobs.job_create(domain_id=room.id, kind=self.jobs.job.kind, spec=spec, cost=self.jobs.job.cost)
        return Response(self.jobs.abstract(job, streams=streams, request=request))


class SubscriptionDetailView(LiveRoomView):
    jobs: ClassVar[JobKind]

    def get(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        room = self.room(request, room_id)
        job = job_in(room, job_id, self.jobs)
        return Response(self.jobs.abstract(job, streams=room_streams(room), request=request))

    def patch(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        room = self.room(request, room_id)
        streams = room_streams(room)
        job = job_in(room, job_id, self.jobs)
        job = jobs.job_update_spec(job_id=job.id, spec=self.jobs.apply_patch(job.spec, request.data, streams=streams))
        return Response(self.jobs.abstract(job, streams=streams, request=request))

    def delete(self, request: Request, version: str, room_id: str, job_id: str) -> HttpResponse:
        room = self.room(request, room_id)
        other = MediaJob.objects.filter(id=job_id, domain_id=room.id).exclude(kind=self.jobs.job.kind).exists()
        if other:
            raise InvalidRequest("Delete type not match")
        jobs.job_stop(job_id=job_in(room, job_id, self.jobs).id)
        return HttpResponse(status=200)


@extend_schema(tags=["rooms: recordings"])
class RecordingListView(SubscriptionListView):
    jobs = RECORDINGS

    @extend_schema(
        responses={200: RecordingAbstractSerializer(many=True)}, summary="Recordings of the room (running and ended)"
    )
    def get(self, request: Request, version: str, room_id: str) -> Response:
        return super().get(request, version, room_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: RecordingAbstractSerializer},
        examples=[RECORDING_EXAMPLE],
        summary="Start recording streams of the room (a media worker writes the file)",
    )
    def post(self, request: Request, version: str, room_id: str) -> Response:
        return super().post(request, version, room_id)


@extend_schema(tags=["rooms: recordings"])
class RecordingDetailView(SubscriptionDetailView):
    jobs = RECORDINGS

    @extend_schema(responses={200: RecordingAbstractSerializer})
    def get(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().get(request, version, room_id, job_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: RecordingAbstractSerializer},
        summary="Switch a track's source (/media/<kind>/from) or pause it (/media/<kind>/status)",
    )
    def patch(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().patch(request, version, room_id, job_id)

    @extend_schema(responses={200: None}, summary="Stop the recording (the file is closed and kept)")
    def delete(self, request: Request, version: str, room_id: str, job_id: str) -> HttpResponse:
        return super().delete(request, version, room_id, job_id)


@extend_schema(tags=["rooms: recordings"])
class RecordingFileView(LiveRoomView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}, summary="Download the file")
    def get(self, request: Request, version: str, room_id: str, job_id: str) -> FileResponse:
        job = job_in(self.room(request, room_id), job_id, RECORDINGS)
        if job.result.get("stored"):  # handed to the recordings storage when it ended
            store, name = storages["recordings"], job.result["stored"]
            if not store.exists(name):
                raise JobNotFound("Recording file not found")
            return FileResponse(store.open(name, "rb"), as_attachment=True, filename=Path(name).name)
        root = Path(settings.MEDIA_ROOT).resolve()
        path = Path(job.result.get("storage", {}).get("file", "")).resolve()
        if not path.is_file() or root not in path.parents:
            raise JobNotFound("Recording file not found")
        return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


@extend_schema(tags=["rooms: streaming-ins"])
class StreamingInListView(LiveRoomView):
    @classmethod
    def as_view(cls, **initkwargs: object) -> Callable[..., Any]:
        return awaiting_stream(super().as_view(**initkwargs))

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: StreamInfoSerializer},
        examples=[STREAMING_IN_EXAMPLE],
        summary="Pull an RTSP/RTMP/HLS source into the room; answers with its stream once published",
    )
    def post(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        spec = streaming_in_spec(request.data)
        check_source_url(spec["connection"]["url"])
        job = jobs.job_create(domain_id=room.id, kind=StreamingInJob.kind, spec=spec, cost=StreamingInJob.cost)
        return StreamPending(job.id, lambda publication: render_stream(publication, version))


@extend_schema(tags=["rooms: streaming-ins"])
class StreamingInDetailView(LiveRoomView):
    @extend_schema(responses={200: None}, summary="Stop the streaming-in (its stream is unpublished)")
    def delete(self, request: Request, version: str, room_id: str, stream_id: str) -> HttpResponse:
        room = self.room(request, room_id)
        job = MediaJob.objects.filter(id=stream_id, domain_id=room.id, kind=StreamingInJob.kind).first()
        if job is None:
            raise StreamNotFound()
        if Publication.objects.filter(id=job.id).exists():
            engine.publication_delete(publication_id=job.id)
        else:  # not published yet (or any more)
            jobs.job_stop(job_id=job.id)
        return HttpResponse(status=200)


@extend_schema(tags=["rooms: streaming-outs"])
class StreamingOutListView(SubscriptionListView):
    jobs = STREAMING_OUTS

    @extend_schema(responses={200: StreamingOutAbstractSerializer(many=True)}, summary="Streaming-outs of the room")
    def get(self, request: Request, version: str, room_id: str) -> Response:
        return super().get(request, version, room_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: StreamingOutAbstractSerializer},
        examples=[STREAMING_OUT_EXAMPLE],
        summary="Start streaming streams of the room out (RTMP, RTSP, HLS, DASH; encoded to H.264 + AAC)",
    )
    def post(self, request: Request, version: str, room_id: str) -> Response:
        return super().post(request, version, room_id)


@extend_schema(tags=["rooms: streaming-outs"])
class StreamingOutDetailView(SubscriptionDetailView):
    jobs = STREAMING_OUTS

    @extend_schema(responses={200: StreamingOutAbstractSerializer})
    def get(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().get(request, version, room_id, job_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: StreamingOutAbstractSerializer},
        summary="Switch a source (/media/<kind>/from), pause a track or change /media/video/parameters/<name>",
    )
    def patch(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().patch(request, version, room_id, job_id)

    @extend_schema(responses={200: None}, summary="Stop the streaming-out (an HLS/DASH playlist is ended)")
    def delete(self, request: Request, version: str, room_id: str, job_id: str) -> HttpResponse:
        return super().delete(request, version, room_id, job_id)


@extend_schema(tags=["rooms: analytics"])
class AnalyticsListView(SubscriptionListView):
    jobs = ANALYTICS

    @extend_schema(responses={200: AnalyticsAbstractSerializer(many=True)}, summary="Analytics of the room")
    def get(self, request: Request, version: str, room_id: str) -> Response:
        return super().get(request, version, room_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: AnalyticsAbstractSerializer},
        examples=[ANALYTICS_EXAMPLE],
        summary="Analyse a stream's video (motion, brightness or a plugin); the result is a new stream, same id",
    )
    def post(self, request: Request, version: str, room_id: str) -> Response:
        return super().post(request, version, room_id)


@extend_schema(tags=["rooms: analytics"])
class AnalyticsDetailView(SubscriptionDetailView):
    jobs = ANALYTICS
    http_method_names = ["get", "delete", "head", "options"]  # OWT has no PATCH of an analytics

    @extend_schema(responses={200: AnalyticsAbstractSerializer}, summary="The analytics, its progress and events")
    def get(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().get(request, version, room_id, job_id)

    @extend_schema(responses={200: None}, summary="Stop the analytics (its stream is unpublished)")
    def delete(self, request: Request, version: str, room_id: str, job_id: str) -> HttpResponse:
        return super().delete(request, version, room_id, job_id)


@extend_schema(tags=["rooms: sip calls"])
class SipCallListView(SubscriptionListView):
    jobs = SIP_CALLS

    @extend_schema(responses={200: SipCallAbstractSerializer(many=True)}, summary="SIP calls of the room")
    def get(self, request: Request, version: str, room_id: str) -> Response:
        return super().get(request, version, room_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: SipCallAbstractSerializer},
        examples=[SIP_CALL_EXAMPLE],
        summary="Dial out: a media worker calls peerURI and bridges the call's audio into the room",
    )
    def post(self, request: Request, version: str, room_id: str) -> Response:
        return super().post(request, version, room_id)


@extend_schema(tags=["rooms: sip calls"])
class SipCallDetailView(SubscriptionDetailView):
    jobs = SIP_CALLS

    @extend_schema(responses={200: SipCallAbstractSerializer}, summary="The call, its SIP state and DTMF received")
    def get(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().get(request, version, room_id, job_id)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: SipCallAbstractSerializer},
        summary="Change what the callee hears (/output/media/audio/from)",
    )
    def patch(self, request: Request, version: str, room_id: str, job_id: str) -> Response:
        return super().patch(request, version, room_id, job_id)

    @extend_schema(responses={200: None}, summary="Hang up")
    def delete(self, request: Request, version: str, room_id: str, job_id: str) -> HttpResponse:
        return super().delete(request, version, room_id, job_id)
