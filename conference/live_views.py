"""Management resources over the live engine: a room's participants and streams (spec 5.2, 5.3).

Reads come from the engine's live state (the room's domain); changes act on the live
sessions through the engine write API (``streamengine.services``) (permission updates reach the participant's
signaling consumer, DELETE sends ``drop``, stream status mutes/unmutes the track). Streams
render in the v1.0 form under ``/v1/`` and in the v1.1 form under ``/v1.1/``.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conference.exceptions import InvalidRequest
from conference.live_serializers import (
    LiveParticipantSerializer,
    StreamInfoSerializer,
    mixed_stream_changes,
    permission_apply,
    permission_changes,
    stream_changes,
    stream_v10,
    stream_v11,
)
from conference.models import Room
from conference.selectors import room_get
from owt.mauth import MAuthAPIView
from streamengine import selectors as engine_selectors
from streamengine import services as engine
from streamengine.exceptions import ParticipantNotFound, StreamNotFound
from streamengine.models import Participant, Publication

PERMISSION_PATCH_EXAMPLE = OpenApiExample(
    "revoke video publishing",
    value=[{"op": "replace", "path": "/permission/publish/video", "value": False}],
    request_only=True,
)
STREAM_PATCH_EXAMPLE = OpenApiExample(
    "mute video and mix into the common view",
    value=[
        {"op": "replace", "path": "/media/video/status", "value": "inactive"},
        {"op": "add", "path": "/info/inViews", "value": "common"},
    ],
    request_only=True,
)
STREAM_EXAMPLE = OpenApiExample(
    "forward stream (v1.1 form)",
    value={
        "id": "8a1c0d6e5f4b4c3a9e2d1f0a7b6c5d4e",
        "type": "forward",
        "media": {
            "audio": {"status": "active", "source": "mic", "format": {"codec": "opus", "sampleRate": 48000}},
            "video": {
                "status": "active",
                "source": "camera",
                "original": [{"format": {"codec": "vp8"}}],
                "optional": {"format": [{"codec": "h264", "profile": "CB"}], "parameters": {"framerate": [6, 12]}},
            },
        },
        "data": None,
        "info": {"owner": "p1", "type": "webrtc", "inViews": [], "attributes": {}},
    },
    response_only=True,
)


class LiveRoomView(MAuthAPIView):
    """Resolves the room of the calling service (404/1003 otherwise) from the URL."""

    def room(self, request: Request, room_id: str) -> Room:
        return room_get(service=request.user, room_id=room_id)


def participant_in(room: Room, participant_id: str) -> Participant:
    participant = engine_selectors.domain_participants(domain_id=room.id).filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    return participant


def stream_in(room: Room, stream_id: str) -> Publication:
    publication = engine_selectors.domain_streams(domain_id=room.id).filter(id=stream_id).first()
    if publication is None:
        raise StreamNotFound()
    return publication


def render_stream(publication: Publication, version: str) -> dict:
    form = stream_v11 if version == "v1.1" else stream_v10
    return form(publication, publication.domain.config)


@extend_schema(tags=["rooms: participants"])
class ParticipantListView(LiveRoomView):
    @extend_schema(responses={200: LiveParticipantSerializer(many=True)}, summary="Participants in the room now")
    def get(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        participants = engine_selectors.domain_participants(domain_id=room.id)
        return Response(LiveParticipantSerializer(participants, many=True).data)


@extend_schema(tags=["rooms: participants"])
class ParticipantDetailView(LiveRoomView):
    @extend_schema(responses={200: LiveParticipantSerializer})
    def get(self, request: Request, version: str, room_id: str, participant_id: str) -> Response:
        participant = participant_in(self.room(request, room_id), participant_id)
        return Response(LiveParticipantSerializer(participant).data)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: LiveParticipantSerializer},
        examples=[PERMISSION_PATCH_EXAMPLE],
        summary="Update permissions; applies to the live session's next publish/subscribe",
    )
    def patch(self, request: Request, version: str, room_id: str, participant_id: str) -> Response:
        participant = participant_in(self.room(request, room_id), participant_id)
        permission = permission_apply(participant.permission, permission_changes(request.data))
        engine.participant_update_permission(participant_id=participant.id, permission=permission)
        participant.refresh_from_db()
        return Response(LiveParticipantSerializer(participant).data)

    @extend_schema(responses={200: None}, summary="Drop the participant (the client gets `drop`)")
    def delete(self, request: Request, version: str, room_id: str, participant_id: str) -> HttpResponse:
        participant = participant_in(self.room(request, room_id), participant_id)
        engine.participant_drop(participant_id=participant.id)
        return HttpResponse(status=200)


@extend_schema(tags=["rooms: streams"])
class StreamListView(LiveRoomView):
    @extend_schema(
        responses={200: StreamInfoSerializer(many=True)}, examples=[STREAM_EXAMPLE], summary="Streams in the room now"
    )
    def get(self, request: Request, version: str, room_id: str) -> Response:
        room = self.room(request, room_id)
        publications = engine_selectors.domain_streams(domain_id=room.id).select_related("domain")
        return Response([render_stream(publication, version) for publication in publications])


@extend_schema(tags=["rooms: streams"])
class StreamDetailView(LiveRoomView):
    @extend_schema(responses={200: StreamInfoSerializer}, examples=[STREAM_EXAMPLE])
    def get(self, request: Request, version: str, room_id: str, stream_id: str) -> Response:
        return Response(render_stream(stream_in(self.room(request, room_id), stream_id), version))

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={200: StreamInfoSerializer},
        examples=[STREAM_PATCH_EXAMPLE],
        summary="Mute/unmute a track, or add/remove the stream to/from a mixed view",
    )
    def patch(self, request: Request, version: str, room_id: str, stream_id: str) -> Response:
        publication = stream_in(self.room(request, room_id), stream_id)
        if publication.kind == "mixed":
            return Response(render_stream(patch_mixed(publication, request.data), version))
        labels = [view.get("label", "common") for view in publication.domain.config.get("views") or []]
        for change, target, value in stream_changes(request.data, view_labels=labels):
            if change == "status":
                engine.publication_set_track_status(publication_id=publication.id, kinds={target}, status=value)
            else:
                engine.publication_update_in_views(publication_id=publication.id, view=target, add=value)
        publication.refresh_from_db()
        return Response(render_stream(publication, version))

    @extend_schema(responses={200: None}, summary="Unpublish the stream")
    def delete(self, request: Request, version: str, room_id: str, stream_id: str) -> HttpResponse:
        publication = stream_in(self.room(request, room_id), stream_id)
        if publication.kind == "mixed":
            raise InvalidRequest("A mixed stream cannot be deleted: it exists while the room is in use")
        engine.publication_delete(publication_id=publication.id)
        return HttpResponse(status=200)


def patch_mixed(publication: Publication, body: object) -> Publication:
    """LayoutUpdate / RegionUpdate of a mixed stream; the streams named must be in its view."""
    label = publication.info["label"]
    in_view = {
        stream.id
        for stream in engine_selectors.domain_streams(domain_id=publication.domain_id).exclude(kind="mixed")
        if label in stream.info.get("inViews", [])
    }
    for change, value in mixed_stream_changes(body, stream_ids=in_view, layout=publication.info.get("layout", [])):
        if change == "layout":
            publication = engine.mixed_set_layout(publication_id=publication.id, layout=value)
        else:
            region_id, stream_id = value
            publication = engine.mixed_set_region(
                publication_id=publication.id, stream_id=stream_id, region_id=region_id
            )
    return publication
