"""The egress API (``/egress/v1/{app_id}/…``): thin views over ``egress.services`` / ``selectors``.

Every route is MAuth-authenticated like the management API: ``app_id`` is an OWT service's
id and must be the caller's own (the super service may act for any app), so one app never
sees another's tasks or files (an unknown task and another app's answer alike: 404).
"""

from __future__ import annotations

from django.core.files.storage import storages
from django.http import FileResponse
from django_filters import rest_framework as filters
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from conference.models import Service
from egress import selectors, services
from egress.errors import ERROR_FORMAT, AppMismatch
from egress.models import EgressTask
from egress.serializers import (
    FileSerializer,
    RequestIdSerializer,
    StartTaskSerializer,
    TaskSerializer,
    TaskStartedSerializer,
    WebhookEndpointSerializer,
)
from owt.errors import NotFound
from owt.mauth import MAuthAPIView

COMPOSITE_EXAMPLE = OpenApiExample(
    "record two users of a room composited into 720p HLS",
    value={
        "request_id": "m2d3k03l",
        "cmd": "record",
        "payload": {
            "layout": "flat",
            "channel": "egress_test",
            "users": ["user1", "user2"],
            "format": "hls",
            "video": {"width": 1280, "height": 720, "frameRate": 30, "bitrate": 1000},
            "audio": {"sampleRate": 48000, "channels": 2, "bitrate": 128},
        },
    },
    request_only=True,
)
WEB_EXAMPLE = OpenApiExample(
    "record a web page into MP4",
    value={
        "request_id": "m2d3kw3l",
        "cmd": "record",
        "payload": {"layout": "freestyle", "url": "https://example.org/board", "format": "mp4"},
    },
    request_only=True,
)


class TaskFilter(filters.FilterSet):
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = EgressTask
        fields = ["status", "layout", "channel", "room_id", "request_id"]


class EgressView(MAuthAPIView):
    error_format = ERROR_FORMAT

    def app(self, request: Request, app_id: str) -> Service:
        caller: Service = request.user
        if caller.id == app_id:
            return caller
        if not caller.is_super:
            raise AppMismatch()
        service = Service.objects.filter(id=app_id).first()
        if service is None:
            raise NotFound(f"app {app_id} not found")
        return service

    def task(self, request: Request, app_id: str, task_id: str) -> EgressTask:
        return selectors.task_get(service=self.app(request, app_id), task_id=task_id)


@extend_schema(tags=["egress"])
class TaskListView(EgressView):
    @extend_schema(
        request=StartTaskSerializer,
        responses={200: TaskStartedSerializer},
        examples=[COMPOSITE_EXAMPLE, WEB_EXAMPLE],
        summary="Start a task (the same request_id answers the task it started)",
    )
    def post(self, request: Request, app_id: str) -> Response:
        service = self.app(request, app_id)
        body = StartTaskSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        task, _ = services.task_start(service=service, **body.validated_data)
        return Response({"request_id": task.request_id, "task_id": task.id, "status": task.status})

    @extend_schema(
        responses={200: TaskSerializer(many=True)},
        summary="The app's tasks, newest first (filters: status, layout, channel, room_id, request_id, created_*)",
    )
    def get(self, request: Request, app_id: str) -> Response:
        found = TaskFilter(request.query_params, queryset=selectors.task_queryset(service=self.app(request, app_id)))
        if not found.is_valid():
            raise translate_validation(found.errors)
        limit = min(max(int(request.query_params.get("limit", "100") or 100), 1), 1000)
        return Response(TaskSerializer(found.qs[:limit], many=True).data)


def _echo(request: Request, data: dict) -> dict:
    """The response with the request's ``request_id`` echoed (the original does; it takes the
    place of the task's own, which the list shows)."""
    body = RequestIdSerializer(data=request.data if isinstance(request.data, dict) else {})
    body.is_valid(raise_exception=True)
    request_id = body.validated_data.get("request_id") or request.query_params.get("request_id")
    return {**data, "request_id": request_id} if request_id else data


@extend_schema(tags=["egress"])
class TaskDetailView(EgressView):
    @extend_schema(responses={200: TaskSerializer}, summary="A task's status, payload (with files) and progress")
    def get(self, request: Request, app_id: str, task_id: str) -> Response:
        return Response(_echo(request, TaskSerializer(self.task(request, app_id, task_id)).data))


@extend_schema(tags=["egress"])
class TaskStatusView(EgressView):
    @extend_schema(
        request=RequestIdSerializer, responses={200: TaskSerializer}, summary="A task's status (the original's POST)"
    )
    def post(self, request: Request, app_id: str, task_id: str) -> Response:
        return Response(_echo(request, TaskSerializer(self.task(request, app_id, task_id)).data))


@extend_schema(tags=["egress"])
class TaskStopView(EgressView):
    @extend_schema(
        request=RequestIdSerializer,
        responses={200: OpenApiTypes.OBJECT},
        summary="Stop a task: STOPPED at once if still queued, else STOPPING until its files are closed",
    )
    def post(self, request: Request, app_id: str, task_id: str) -> Response:
        task = services.task_stop(task=self.task(request, app_id, task_id))
        return Response(_echo(request, {"task_id": task.id, "status": task.status, "message": task.message}))


@extend_schema(tags=["egress"])
class TaskFilesView(EgressView):
    @extend_schema(responses={200: FileSerializer(many=True)}, summary="The files a task wrote, with download URLs")
    def get(self, request: Request, app_id: str, task_id: str) -> Response:
        task = self.task(request, app_id, task_id)
        return Response(FileSerializer(task.files.all(), many=True, context={"request": request}).data)


@extend_schema(tags=["egress"])
class TaskFileView(EgressView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}, summary="Download a file")
    def get(self, request: Request, app_id: str, task_id: str, name: str) -> FileResponse:
        file = selectors.file_get(task=self.task(request, app_id, task_id), name=name)
        return FileResponse(storages["recordings"].open(file.location, "rb"), as_attachment=True, filename=file.name)


@extend_schema(tags=["egress"])
class WebhookView(EgressView):
    @extend_schema(responses={200: WebhookEndpointSerializer}, summary="The app's webhook endpoint")
    def get(self, request: Request, app_id: str) -> Response:
        endpoint = getattr(self.app(request, app_id), "egress_webhook", None)
        if endpoint is None:
            raise NotFound("no webhook is set")
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses={200: WebhookEndpointSerializer},
        summary="Set where task state changes are POSTed (signed with the secret, given or made)",
    )
    def put(self, request: Request, app_id: str) -> Response:
        body = WebhookEndpointSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        endpoint = services.webhook_set(service=self.app(request, app_id), **body.validated_data)
        return Response({**WebhookEndpointSerializer(endpoint).data, "secret": endpoint.secret})
