"""The stream-engine REST API (``/v1.1/stream-engine/...``): tokens, and the live state read side.

Lists answer ``{total, start, data}``. Filters are key-value pairs (AND of exact matches)
taken from the query string and, for compatibility with OWT's clients, also from a JSON
body ``{"query": {...}}`` (the reference server reads them only from the body, even for
GET). ``start``/``limit`` paginate. Every resource is scoped to the calling service's
domains; another tenant's ids answer 404 as if they did not exist. Deleting a participant,
publication or subscription acts on the live session through the engine write API (``streamengine.services``).
``POST publications`` of type ``streaming`` starts a streaming-in job (docs/media-jobs.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from owt.errors import ApiError
from owt.mauth import MAuthAPIView
from streamengine import selectors, services
from streamengine.exceptions import (
    InvalidListQuery,
    InvalidProcessor,
    NodeNotFound,
    ParticipantNotFound,
    ProcessorNotFound,
    StreamNotFound,
    SubscriptionNotFound,
)
from streamengine.jobs.analytics import AnalyticsJob
from streamengine.jobs.awaiting import StreamPending, awaiting_stream
from streamengine.jobs.mixing import AudioSelectingJob
from streamengine.jobs.recording import RecordingJob
from streamengine.jobs.requests import analytics_spec, recording_spec, streaming_out_spec
from streamengine.jobs.services import job_create, job_stop
from streamengine.jobs.streaming_in import StreamingInJob, check_source_url
from streamengine.jobs.streaming_out import StreamingOutJob
from streamengine.serializers import (
    JobSubscriptionInputSerializer,
    ListQuerySerializer,
    NodeOutputSerializer,
    ParticipantOutputSerializer,
    ProcessorInputSerializer,
    ProcessorOutputSerializer,
    PublicationOutputSerializer,
    StreamingPublicationInputSerializer,
    SubscriptionOutputSerializer,
    TokenInputSerializer,
)

# OWT's audio selector forwards the 3 loudest streams unless told how many outputs it has.
AUDIO_SELECTING_SLOTS = 3


def service_owner(request: Request) -> str:
    """The domain owner the caller may see: the MAuth service's id (rooms' domains carry it)."""
    return request.user.id


class StateListView(MAuthAPIView):
    """GET a list of one kind of state object with filters and pagination."""

    output_serializer: type[serializers.Serializer]
    filters: dict[str, str]

    def queryset(self, *, owner: str) -> QuerySet:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        params = {key: request.query_params.get(key) for key in request.query_params}
        body = request.data if isinstance(request.data, dict) else {}
        body_query = body.get("query") or {}
        if not isinstance(body_query, dict):
            raise InvalidListQuery("query must be an object of key-value pairs")
        paging = ListQuerySerializer(
            data={key: value for key in ("start", "limit") if (value := params.pop(key, body.get(key))) is not None}
        )
        paging.is_valid(raise_exception=True)
        queryset = self.queryset(owner=service_owner(request))
        queryset = selectors.apply_filters(queryset, self.filters, params)
        queryset = selectors.apply_filters(queryset, self.filters, body_query)
        page = selectors.paginate(queryset, **paging.validated_data)
        return Response(
            {"total": page.total, "start": page.start, "data": self.output_serializer(page.items, many=True).data}
        )


class StateDetailView(MAuthAPIView):
    """GET one state object of the caller's domains (404 in the OWT envelope otherwise)."""

    output_serializer: type[serializers.Serializer]
    not_found: type[ApiError]

    def queryset(self, *, owner: str) -> QuerySet:
        raise NotImplementedError

    def get_object(self, request: Request, object_id: str) -> Model:
        found = self.queryset(owner=service_owner(request)).filter(id=object_id).first()
        if found is None:
            raise self.not_found()
        return found

    def get(self, request: Request, object_id: str) -> Response:
        return Response(self.output_serializer(self.get_object(request, object_id)).data)


class DeletableStateDetailView(StateDetailView):
    """DELETE acts on the live session (drop, unpublish, unsubscribe) through the engine write API (services)."""

    def delete_live(self, object_id: str) -> None:
        raise NotImplementedError

    @extend_schema(responses={200: None}, summary="Delete (drop / unpublish / unsubscribe) on the live session")
    def delete(self, request: Request, object_id: str) -> HttpResponse:
        self.get_object(request, object_id)
        self.delete_live(object_id)
        return HttpResponse(status=200)


def list_schema(name: str, output: type[serializers.Serializer], filters: dict[str, str]):
    filter_parameters = [OpenApiParameter(key, OpenApiTypes.STR, description="exact match") for key in filters]
    return extend_schema_view(
        get=extend_schema(
            tags=["stream-engine"],
            operation_id=f"stream_engine_{name}s_list",
            summary=f'List {name}s (filters: query string and/or body {{"query": {{...}}}})',
            parameters=[
                OpenApiParameter("start", OpenApiTypes.INT, description="Offset of the first item (default 0)"),
                OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page (default 100, max 1000)"),
                *filter_parameters,
            ],
            responses={
                200: inline_serializer(
                    name=f"{name.capitalize()}ListResult",
                    fields={
                        "total": serializers.IntegerField(),
                        "start": serializers.IntegerField(),
                        "data": output(many=True),
                    },
                )
            },
        )
    )


@extend_schema(tags=["stream-engine"])
class TokenCreateView(MAuthAPIView):
    @extend_schema(
        request=TokenInputSerializer,
        responses={(200, "text/plain"): OpenApiTypes.STR},
        examples=[
            OpenApiExample(
                "token request",
                value={"domain": "5f0e0d7b2c3a4b5c6d7e8f90", "user": "alice", "role": "presenter"},
                request_only=True,
            )
        ],
        summary="Create a one-time join token for a domain (room); the body of the answer is the token",
    )
    def post(self, request: Request) -> HttpResponse:
        payload = TokenInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        domain = selectors.owned_domain_get(owner=service_owner(request), domain_id=data["domain"])
        # As in OWT, a user and role signed into the MAuth header win over the body.
        credentials = request.auth
        from_header = bool(credentials.user and credentials.role)
        token = services.token_create(
            domain_id=domain.id,
            user=credentials.user if from_header else data.get("user", ""),
            role=credentials.role if from_header else data.get("role", ""),
            origin=data.get("preference"),
        )
        return HttpResponse(token, content_type="text/plain")


@list_schema("participant", ParticipantOutputSerializer, selectors.PARTICIPANT_FILTERS)
class ParticipantListView(StateListView):
    output_serializer = ParticipantOutputSerializer
    filters = selectors.PARTICIPANT_FILTERS

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.participant_queryset(owner=owner)


@extend_schema(tags=["stream-engine"], responses={200: ParticipantOutputSerializer})
class ParticipantDetailView(DeletableStateDetailView):
    output_serializer = ParticipantOutputSerializer
    not_found = ParticipantNotFound

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.participant_queryset(owner=owner)

    def delete_live(self, object_id: str) -> None:
        services.participant_drop(participant_id=object_id)


@list_schema("publication", PublicationOutputSerializer, selectors.PUBLICATION_FILTERS)
class PublicationListView(StateListView):
    output_serializer = PublicationOutputSerializer
    filters = selectors.PUBLICATION_FILTERS

    @classmethod
    def as_view(cls, **initkwargs: object) -> Callable[..., Any]:
        return awaiting_stream(super().as_view(**initkwargs))

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.publication_queryset(owner=owner)

    @extend_schema(
        tags=["stream-engine"],
        request=StreamingPublicationInputSerializer,
        responses={200: inline_serializer(name="PublicationId", fields={"id": serializers.CharField()})},
        examples=[
            OpenApiExample(
                "pull an RTMP feed into a room",
                value={
                    "type": "streaming",
                    "participant": "5f0e0d7b2c3a4b5c6d7e8f90",
                    "media": {"audio": "auto", "video": True},
                    "info": {"url": "rtmp://live.example.org/app/key"},
                },
                request_only=True,
            )
        ],
        summary="Publish an external source (a streaming-in job); answers {id} once it is published",
    )
    def post(self, request: Request) -> Response:
        payload = StreamingPublicationInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        domain = selectors.owned_domain_get(owner=service_owner(request), domain_id=data["participant"])
        check_source_url(data["info"]["url"])
        spec = {"connection": data["info"], "media": data["media"], "attributes": data["attributes"]}
        job = job_create(domain_id=domain.id, kind=StreamingInJob.kind, spec=spec, cost=StreamingInJob.cost)
        return StreamPending(job.id, lambda publication: {"id": publication.id})


@extend_schema(tags=["stream-engine"], responses={200: PublicationOutputSerializer})
class PublicationDetailView(DeletableStateDetailView):
    output_serializer = PublicationOutputSerializer
    not_found = StreamNotFound

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.publication_queryset(owner=owner)

    def delete_live(self, object_id: str) -> None:
        services.publication_delete(publication_id=object_id)


@list_schema("subscription", SubscriptionOutputSerializer, selectors.SUBSCRIPTION_FILTERS)
class SubscriptionListView(StateListView):
    output_serializer = SubscriptionOutputSerializer
    filters = selectors.SUBSCRIPTION_FILTERS

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.subscription_queryset(owner=owner)

    @extend_schema(
        tags=["stream-engine"],
        request=JobSubscriptionInputSerializer,
        responses={200: inline_serializer(name="SubscriptionId", fields={"id": serializers.CharField()})},
        summary="Start a recording or streaming-out (a media job); answers its id at once",
    )
    def post(self, request: Request) -> Response:
        payload = JobSubscriptionInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        domain = selectors.owned_domain_get(owner=service_owner(request), domain_id=data["participant"])
        streams = {p.id: p for p in selectors.domain_streams(domain_id=domain.id)}
        info = data["info"]
        if data["type"] == "recording":
            runner = RecordingJob
            spec = recording_spec({**info, "media": data["media"]}, streams=streams)
        else:
            runner = StreamingOutJob
            spec = streaming_out_spec({**info, "media": data["media"]}, streams=streams)
        job = job_create(domain_id=domain.id, kind=runner.kind, spec=spec, cost=runner.cost)
        return Response({"id": job.id})


@extend_schema(tags=["stream-engine"], responses={200: SubscriptionOutputSerializer})
class SubscriptionDetailView(DeletableStateDetailView):
    """A subscription by its id, or a recording's / streaming-out's by its job's id."""

    output_serializer = SubscriptionOutputSerializer
    not_found = SubscriptionNotFound

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.subscription_queryset(owner=owner)

    def get_object(self, request: Request, object_id: str) -> Model:
        job = selectors.job_get(job_id=object_id, owner=service_owner(request))
        if job is None:
            return super().get_object(request, object_id)
        found = self.queryset(owner=service_owner(request)).filter(participant__job_id=job.id).first()
        if found is None:
            raise self.not_found("The job has no subscription yet" if job.active else "The job has ended")
        return found

    @extend_schema(responses={200: None}, summary="Unsubscribe, or stop a recording's / streaming-out's job")
    def delete(self, request: Request, object_id: str) -> HttpResponse:
        job = selectors.job_get(job_id=object_id, owner=service_owner(request))
        if job is not None:
            job_stop(job_id=job.id)
            return HttpResponse(status=200)
        return super().delete(request, object_id)

    def delete_live(self, object_id: str) -> None:
        services.subscription_delete(subscription_id=object_id)


@list_schema("processor", ProcessorOutputSerializer, selectors.PROCESSOR_FILTERS)
class ProcessorListView(StateListView):
    output_serializer = ProcessorOutputSerializer
    filters = selectors.PROCESSOR_FILTERS

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.processor_queryset(owner=owner)

    @extend_schema(
        tags=["stream-engine"],
        request=ProcessorInputSerializer,
        responses={200: inline_serializer(name="ProcessorId", fields={"id": serializers.CharField()})},
        examples=[
            OpenApiExample(
                "mix a domain's streams into view 'common' at 1280x720",
                value={
                    "type": "video",
                    "participant": "5f0e0d7b2c3a4b5c6d7e8f90",
                    "mixing": {"view": "common", "parameters": {"resolution": {"width": 1280, "height": 720}}},
                },
                request_only=True,
            )
        ],
        summary="Start a processor (a media job): a view's video/audio mixer, video transcoding, audio selecting, analytics",
    )
    def post(self, request: Request) -> Response:
        payload = ProcessorInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        domain = selectors.owned_domain_get(owner=service_owner(request), domain_id=data["participant"])
        if "mixing" in data:
            job = services.processor_mixing(domain_id=domain.id, media=data["type"], attributes=data["mixing"])
            return Response({"id": job.id})
        if "selecting" in data:
            count = len(data["selecting"].get("activeStreamIds") or []) or AUDIO_SELECTING_SLOTS
            job = job_create(
                domain_id=domain.id, kind=AudioSelectingJob.kind, spec={"count": count}, cost=AudioSelectingJob.cost
            )
            return Response({"id": job.id})
        if data["type"] == "audio":
            # Audio is transcoded for each subscription that asks for another codec, in the SFU.
            raise InvalidProcessor("audio transcoding processors are not available: subscribe with the audio format")
        streams = {p.id: p for p in selectors.domain_streams(domain_id=domain.id)}
        if "analytics" in data:
            body = {key: value for key, value in data["analytics"].items() if key != "id"}
        else:  # video transcoding: the analytics job with the identity algorithm
            attributes = dict(data["transcoding"])
            attributes.pop("id", None)
            body = {"algorithm": "transcode", "media": {"video": attributes}}
        job = job_create(
            domain_id=domain.id,
            kind=AnalyticsJob.kind,
            spec=analytics_spec(body, streams=streams),
            cost=AnalyticsJob.cost,
        )
        return Response({"id": job.id})


@extend_schema(tags=["stream-engine"], responses={200: ProcessorOutputSerializer})
class ProcessorDetailView(StateDetailView):
    output_serializer = ProcessorOutputSerializer
    not_found = ProcessorNotFound

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.processor_queryset(owner=owner)

    @extend_schema(responses={200: None}, summary="Stop the processor (its outputs end with it)")
    def delete(self, request: Request, object_id: str) -> HttpResponse:
        job_stop(job_id=self.get_object(request, object_id).id)
        return HttpResponse(status=200)


@list_schema("node", NodeOutputSerializer, selectors.NODE_FILTERS)
class NodeListView(StateListView):
    output_serializer = NodeOutputSerializer
    filters = selectors.NODE_FILTERS

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.node_queryset(owner=owner)


@extend_schema(tags=["stream-engine"], responses={200: NodeOutputSerializer})
class NodeDetailView(StateDetailView):
    output_serializer = NodeOutputSerializer
    not_found = NodeNotFound

    def queryset(self, *, owner: str) -> QuerySet:
        return selectors.node_queryset(owner=owner)
