"""OWT management API: services, rooms, tokens. Thin views over services/selectors.

Every route needs MAuth (``owt.mauth``) and answers errors as ``{"error": {code, message}}``.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from conference import selectors, services
from conference.exceptions import InvalidRequest, PermissionDenied
from conference.serializers import (
    RoomCreateInput,
    RoomListQuery,
    RoomOutput,
    RoomUpdateInput,
    ServiceCreateInput,
    ServiceOutput,
    TokenCreateInput,
)
from owt.errors import describe_validation_error
from owt.mauth import MAuthAPIView

ROOM_EXAMPLE = {
    "_id": "5f1e0d7b2c3a4b5c6d7e8f90",
    "id": "5f1e0d7b2c3a4b5c6d7e8f90",
    "name": "myRoom",
    "inputLimit": -1,
    "participantLimit": -1,
    "selectActiveAudio": False,
    "enableBandwidthAdaptation": False,
    "roles": [
        {"role": "presenter", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}}
    ],
    "views": [
        {
            "label": "common",
            "audio": {"format": {"codec": "opus", "sampleRate": 48000, "channelNum": 2}, "vad": True},
            "video": {
                "format": {"codec": "vp8"},
                "parameters": {"resolution": {"width": 640, "height": 480}, "framerate": 24, "keyFrameInterval": 100},
                "maxInput": 16,
                "motionFactor": 0.8,
                "bgColor": {"r": 0, "g": 0, "b": 0},
                "keepActiveInputPrimary": False,
                "layout": {"fitPolicy": "letterbox", "templates": {"base": "fluid", "custom": []}},
            },
        }
    ],
    "mediaIn": {"audio": [{"codec": "opus", "sampleRate": 48000, "channelNum": 2}], "video": [{"codec": "vp8"}]},
    "mediaOut": {
        "audio": [{"codec": "opus", "sampleRate": 48000, "channelNum": 2}],
        "video": {
            "format": [{"codec": "vp8"}],
            "parameters": {"resolution": ["x3/4"], "framerate": [24], "bitrate": ["x0.8"], "keyFrameInterval": [100]},
        },
    },
    "transcoding": {
        "audio": True,
        "video": {
            "format": True,
            "parameters": {"resolution": True, "framerate": True, "bitrate": True, "keyFrameInterval": True},
        },
    },
    "notifying": {"participantActivities": True, "streamChange": True},
}
ERROR_EXAMPLES = [
    OpenApiExample(
        "Request data error",
        value={
            "error": {
                "code": 1301,
                "message": "views[0].video.maxInput: Ensure this value is less than or equal to 256.",
            }
        },
        response_only=True,
        status_codes=["400"],
    ),
    OpenApiExample(
        "Authentication failed",
        value={"error": {"code": 1101, "message": "MAuth: signature mismatch"}},
        response_only=True,
        status_codes=["401"],
    ),
    OpenApiExample(
        "Room not found",
        value={"error": {"code": 1003, "message": "Room not found"}},
        response_only=True,
        status_codes=["404"],
    ),
]
ERRORS = {400: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT}


def validated(serializer_class: type[Serializer], data: object) -> dict[str, Any]:
    """``data`` as ``serializer_class`` validates it, or 400/1301: lengths, characters, ranges.

    Services still check bodies themselves (types included: a serializer's CharField would
    turn 1 into "1"), so views that write pass the body on, not the coerced data.
    """
    checked = serializer_class(data=data)
    if not checked.is_valid():
        raise InvalidRequest(describe_validation_error(checked.errors))
    return checked.validated_data


def json_body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise InvalidRequest("The request body must be a JSON object")
    return request.data


def text(body: str) -> HttpResponse:
    return HttpResponse(body, content_type="text/plain; charset=utf-8")


def require_super(request: Request) -> None:
    if not request.user.is_super:
        raise PermissionDenied()


class ServiceListView(MAuthAPIView):
    @extend_schema(
        summary="List services (super service only)",
        responses={200: ServiceOutput(many=True), 403: OpenApiTypes.OBJECT},
        tags=["services"],
    )
    def get(self, request: Request) -> Response:
        require_super(request)
        return Response(ServiceOutput(selectors.service_list(), many=True).data)

    @extend_schema(
        summary="Create a service (super service only)",
        request=ServiceCreateInput,
        responses={200: ServiceOutput, 400: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Create", value={"name": "myService", "key": "myServiceKey"}, request_only=True)],
        tags=["services"],
    )
    def post(self, request: Request) -> Response:
        require_super(request)
        body = json_body(request)
        validated(ServiceCreateInput, body)
        service = services.service_create(name=body.get("name"), key=body.get("key"))
        return Response(ServiceOutput(selectors.service_get(caller=request.user, service_id=service.id)).data)


class ServiceDetailView(MAuthAPIView):
    @extend_schema(
        summary="Get a service (the super service, or the service itself)",
        responses={200: ServiceOutput, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        tags=["services"],
    )
    def get(self, request: Request, service_id: str) -> Response:
        return Response(ServiceOutput(selectors.service_get(caller=request.user, service_id=service_id)).data)

    @extend_schema(
        summary="Delete a service and its rooms (super service only; never the super service)",
        responses={(200, "text/plain"): OpenApiTypes.STR, 403: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        tags=["services"],
    )
    def delete(self, request: Request, service_id: str) -> HttpResponse:
        services.service_delete(caller=request.user, service_id=service_id)
        return text("Service deleted")


class RoomListView(MAuthAPIView):
    @extend_schema(
        summary="List the calling service's rooms",
        parameters=[
            OpenApiParameter("page", int, description="1-based page number (needs per_page)"),
            OpenApiParameter("per_page", int, description="Page size; omitted or <= 0 returns every room"),
        ],
        responses={200: RoomOutput(many=True), 400: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Rooms", value=[ROOM_EXAMPLE], response_only=True)],
        tags=["rooms"],
    )
    def get(self, request: Request) -> Response:
        # Most listings have no query: validating an empty one cost a tenth of the request.
        query = validated(RoomListQuery, request.query_params) if request.query_params else {}
        return Response(RoomOutput.rendered_many(selectors.room_versions(service=request.user, **query)))

    @extend_schema(
        summary="Create a room (defaults fill every setting not given)",
        request=RoomCreateInput,
        responses={200: RoomOutput, **ERRORS},
        examples=[
            OpenApiExample("Minimal", value={"name": "myRoom"}, request_only=True),
            OpenApiExample(
                "With options",
                value={"name": "lecture", "options": {"participantLimit": 50, "views": [{"video": {"maxInput": 8}}]}},
                request_only=True,
            ),
            OpenApiExample("Created", value=ROOM_EXAMPLE, response_only=True),
            *ERROR_EXAMPLES,
        ],
        tags=["rooms"],
    )
    def post(self, request: Request) -> Response:
        body = json_body(request)
        room = services.room_create(service=request.user, name=body.get("name"), options=body.get("options"))
        return Response(RoomOutput.rendered(room))


class RoomDetailView(MAuthAPIView):
    @extend_schema(
        summary="Get a room",
        responses={200: RoomOutput, 401: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        examples=[OpenApiExample("Room", value=ROOM_EXAMPLE, response_only=True), *ERROR_EXAMPLES],
        tags=["rooms"],
    )
    def get(self, request: Request, room_id: str) -> Response:
        return Response(RoomOutput.rendered(selectors.room_get(service=request.user, room_id=room_id)))

    @extend_schema(
        summary="Update a room: top-level keys given replace the stored ones (the reference's PUT)",
        request=RoomUpdateInput,
        responses={200: RoomOutput, **ERRORS},
        examples=[
            OpenApiExample("Rename and limit", value={"name": "renamed", "participantLimit": 10}, request_only=True),
            *ERROR_EXAMPLES,
        ],
        tags=["rooms"],
    )
    def put(self, request: Request, room_id: str) -> Response:
        return self._update(request, room_id, merge="shallow")

    @extend_schema(
        summary=(
            "Partially update a room: a JSON object is a merge patch (nested objects merge, null resets "
            "to the default); a JSON array is an RFC 6902 JSON Patch, as the official OWT clients send"
        ),
        request=RoomUpdateInput,
        responses={200: RoomOutput, **ERRORS},
        examples=[
            OpenApiExample("Only video.maxInput", value={"views": [{"video": {"maxInput": 4}}]}, request_only=True),
            OpenApiExample("Notify less", value={"notifying": {"streamChange": False}}, request_only=True),
            OpenApiExample(
                "JSON Patch (official clients)",
                value=[{"op": "replace", "path": "/participantLimit", "value": 10}],
                request_only=True,
            ),
            *ERROR_EXAMPLES,
        ],
        tags=["rooms"],
    )
    def patch(self, request: Request, room_id: str) -> Response:
        return self._update(request, room_id, merge="deep")

    def _update(self, request: Request, room_id: str, *, merge: str) -> Response:
        room = selectors.room_get(service=request.user, room_id=room_id, with_config=True)
        room = services.room_update(room=room, body=request.data, merge=merge)
        return Response(RoomOutput.rendered(room))

    @extend_schema(
        summary="Delete a room",
        responses={(200, "text/plain"): OpenApiTypes.STR, 401: OpenApiTypes.OBJECT, 404: OpenApiTypes.OBJECT},
        tags=["rooms"],
    )
    def delete(self, request: Request, room_id: str) -> HttpResponse:
        services.room_delete(room=selectors.room_get(service=request.user, room_id=room_id))
        return text("Room deleted")


class RoomTokenView(MAuthAPIView):
    @extend_schema(
        summary="Create a one-time join token (text; valid 180 s)",
        request=TokenCreateInput,
        responses={(200, "text/plain"): OpenApiTypes.STR, **ERRORS},
        examples=[
            OpenApiExample(
                "Presenter",
                value={"user": "alice", "role": "presenter", "preference": {"isp": "isp", "region": "region"}},
                request_only=True,
            ),
            *ERROR_EXAMPLES,
        ],
        tags=["tokens"],
    )
    def post(self, request: Request, room_id: str) -> HttpResponse:
        try:
            body = json_body(request)
            auth = request.auth
            # A user and role signed into the MAuth header take priority over the body.
            user, role = (auth.user, auth.role) if auth.user and auth.role else (body.get("user"), body.get("role"))
            validated(TokenCreateInput, {**body, "user": user, "role": role})
            # The room is looked up with its roles, as the token is made: an unknown room is a 404.
            token = services.token_create(
                service=request.user, room_id=room_id, user=user, role=role, preference=body.get("preference")
            )
        except InvalidRequest:
            selectors.room_get(service=request.user, room_id=room_id)  # an unknown room answers 404 first
            raise
        return text(token)
