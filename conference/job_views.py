"""Media jobs of a room run by the Celery workers: streaming-ins (spec 5.4), recordings (5.6).

``POST /streaming-ins`` checks the URL (SSRF policy) and creates a ``streaming-in`` job; it
answers once a worker has published the source into the room, with that stream (as
``GET /streams/{id}`` renders it; ``streamengine.jobs.awaiting``), or with the job's reason
(1201, HTTP 503). ``DELETE /streaming-ins/{id}`` unpublishes the stream, which stops the job.

Recordings: media jobs of kind ``recording``.

``POST`` validates the request and creates the job (``streamengine.jobs.services``); a media
worker joins the room and writes the file; ``GET`` shows its state and progress while it
runs; ``PATCH`` switches sources or pauses a track live; ``DELETE`` stops it (the file is
closed properly); ``GET …/file`` downloads the file (MAuth, like every route here).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conference.job_serializers import (
    RecordingAbstractSerializer,
    recording_abstract,
    recording_apply_patch,
    recording_spec,
    streaming_in_spec,
)
from conference.live_serializers import StreamInfoSerializer
from conference.live_views import LiveRoomView, render_stream
from conference.models import Room
from streamengine import selectors as engine_selectors
from streamengine import services as engine
from streamengine.exceptions import JobNotFound, StreamNotFound
from streamengine.jobs import services as jobs
from streamengine.jobs.awaiting import StreamPending, awaiting_stream
from streamengine.jobs.recording import RecordingJob
from streamengine.jobs.streaming_in import StreamingInJob, check_source_url
from streamengine.models import MediaJob, Publication

RECORDING_EXAMPLE = OpenApiExample(
    "record a stream's audio and video into Matroska",
    value={"container": "mkv", "media": {"audio": {"from": "<streamId>"}, "video": {"from": "<streamId>"}}},
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


def room_streams(room: Room) -> dict[str, Publication]:
    return {p.id: p for p in engine_selectors.domain_streams(domain_id=room.id)}


def recording_in(room: Room, recording_id: str) -> MediaJob:
    job = MediaJob.objects.filter(id=recording_id, domain_id=room.id, kind=RecordingJob.kind).first()
    if job is None:
        raise JobNotFound("Recording not found")
    return job


@extend_schema(tags=["rooms: recordings"])
class RecordingListView(LiveRoomView):
    @extend_schema(
        responses={200: RecordingAbstractSerializer(many=True)}, summary="Recordings of the room (running and ended)"
    )
    def get(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        streams = room_streams(room)
        recordings = MediaJob.objects.filter(domain_id=room.id, kind=RecordingJob.kind).order_by("created_at")
        return Response([recording_abstract(job, streams=streams) for job in recordings])

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: RecordingAbstractSerializer},
        examples=[RECORDING_EXAMPLE],
        summary="Start recording streams of the room (a media worker writes the file)",
    )
    def post(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        streams = room_streams(room)
        spec = recording_spec(request.data, streams=streams)
        job = jobs.job_create(domain_id=room.id, kind=RecordingJob.kind, spec=spec, cost=RecordingJob.cost)
        return Response(recording_abstract(job, streams=streams))


@extend_schema(tags=["rooms: recordings"])
class RecordingDetailView(LiveRoomView):
    @extend_schema(responses={200: RecordingAbstractSerializer})
    def get(self, request: Request, version: str, room_id: str, recording_id: str) -> Response:
        room = self.room(request, room_id)
        return Response(recording_abstract(recording_in(room, recording_id), streams=room_streams(room)))

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: RecordingAbstractSerializer},
        summary="Switch a track's source (/media/<kind>/from) or pause it (/media/<kind>/status)",
    )
    def patch(self, request: Request, version: str, room_id: str, recording_id: str) -> Response:
        room = self.room(request, room_id)
        streams = room_streams(room)
        job = recording_in(room, recording_id)
        job = jobs.job_update_spec(job_id=job.id, spec=recording_apply_patch(job.spec, request.data, streams=streams))
        return Response(recording_abstract(job, streams=streams))

    @extend_schema(responses={200: None}, summary="Stop the recording (the file is closed and kept)")
    def delete(self, request: Request, version: str, room_id: str, recording_id: str) -> HttpResponse:
        room = self.room(request, room_id)
        jobs.job_stop(job_id=recording_in(room, recording_id).id)
        return HttpResponse(status=200)


@extend_schema(tags=["rooms: recordings"])
class RecordingFileView(LiveRoomView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}, summary="Download the file")
    def get(self, request: Request, version: str, room_id: str, recording_id: str) -> FileResponse:
        job = recording_in(self.room(request, room_id), recording_id)
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
