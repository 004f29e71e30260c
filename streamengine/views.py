"""The stream-engine REST API (``/v1.1/stream-engine/...``): tokens, and the live state read side.

Lists answer ``{total, start, data}``. Filters are key-value pairs (AND of exact matches)
taken from the query string and, for compatibility with OWT's clients, also from a JSON
body ``{"query": {...}}`` (the reference server reads them only from the body, even for
GET). ``start``/``limit`` paginate. Every resource is scoped to the calling service's
domains; another tenant's ids answer 404 as if they did not exist. Deleting a participant,
publication or subscription acts on the live session through ``streamengine.control``.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from owt.errors import OWT_ERRORS, ApiError
from streamengine import control, selectors, services
from streamengine.exceptions import (
    InvalidListQuery,
    NodeNotFound,
    ParticipantNotFound,
    PublicationNotFound,
    SubscriptionNotFound,
)
from streamengine.serializers import (
    ListQuerySerializer,
    NodeOutputSerializer,
    ParticipantOutputSerializer,
    PublicationOutputSerializer,
    SubscriptionOutputSerializer,
    TokenInputSerializer,
)
from streamengine.auth import EngineAuthMixin, service_owner


class EngineAPIView(EngineAuthMixin, APIView):
    error_format = OWT_ERRORS


def list_result_serializer(name: str, item: type[serializers.Serializer]) -> serializers.Serializer:
    return inline_serializer(
        name=name,
        fields={"total": serializers.IntegerField(), "start": serializers.IntegerField(), "data": item(many=True)},
    )


LIST_PARAMETERS = [
    OpenApiParameter("start", OpenApiTypes.INT, description="Offset of the first item (default 0)"),
    OpenApiParameter("limit", OpenApiTypes.INT, description="Items per page (default 100, at most 1000)"),
]


class StateListView(EngineAPIView):
    """GET a list of one kind of state object with filters and pagination."""

    output_serializer: type[serializers.Serializer]
    filters: dict[str, str]
    queryset: Callable[..., QuerySet]

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
        queryset = type(self).queryset(owner=service_owner(request))
        queryset = selectors.apply_filters(queryset, self.filters, params)
        queryset = selectors.apply_filters(queryset, self.filters, body_query)
        page = selectors.paginate(queryset, **paging.validated_data)
        return Response(
            {"total": page.total, "start": page.start, "data": self.output_serializer(page.items, many=True).data}
        )


class StateDetailView(EngineAPIView):
    """GET one state object; DELETE it (where the resource allows) through the control plane."""

    output_serializer: type[serializers.Serializer]
    queryset: Callable[..., QuerySet]
    not_found: type[ApiError]

    def get_object(self, request: Request, object_id: str):
        found = type(self).queryset(owner=service_owner(request)).filter(id=object_id).first()
        if found is None:
            raise self.not_found()
        return found

    def get(self, request: Request, object_id: str) -> Response:
        return Response(self.output_serializer(self.get_object(request, object_id)).data)


class DeletableStateDetailView(StateDetailView):
    delete_live: Callable[[str], None]

    @extend_schema(responses={200: None})
    def delete(self, request: Request, object_id: str) -> HttpResponse:
        self.get_object(request, object_id)
        type(self).delete_live(object_id)
        return HttpResponse(status=200)


@extend_schema(tags=["stream-engine"])
class TokenCreateView(EngineAPIView):
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
        summary="Create a one-time join token for a domain (room)",
    )
    def post(self, request: Request) -> HttpResponse:
        payload = TokenInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        domain = selectors.domain_get(owner=service_owner(request), domain_id=data["domain"])
        # As in OWT, a user/role given in the MAuth header wins over the body.
        user, role = getattr(request, "mauth_user", None), getattr(request, "mauth_role", None)
        token = services.token_create(
            domain_id=domain.id,
            user=user if user and role else data.get("user", ""),
            role=role if user and role else data.get("role", ""),
            origin=data.get("preference"),
        )
        return HttpResponse(token, content_type="text/plain")


def _list_view(name: str, output, filters: dict[str, str], queryset) -> type[StateListView]:
    schema = extend_schema(
        tags=["stream-engine"],
        parameters=LIST_PARAMETERS
        + [OpenApiParameter(key, OpenApiTypes.STR, description="exact match") for key in filters],
        responses={200: list_result_serializer(f"{name}List", output)},
        summary=f"List {name.lower()}s",
    )
    attrs = {"output_serializer": output, "filters": filters, "queryset": staticmethod(queryset)}
    view = type(f"{name}ListView", (StateListView,), attrs)
    view.get = schema(view.get)
    return view


ParticipantListView = _list_view(
    "Participant", ParticipantOutputSerializer, selectors.PARTICIPANT_FILTERS, selectors.participant_queryset
)
PublicationListView = _list_view(
    "Publication", PublicationOutputSerializer, selectors.PUBLICATION_FILTERS, selectors.publication_queryset
)
SubscriptionListView = _list_view(
    "Subscription", SubscriptionOutputSerializer, selectors.SUBSCRIPTION_FILTERS, selectors.subscription_queryset
)
NodeListView = _list_view("Node", NodeOutputSerializer, selectors.NODE_FILTERS, selectors.node_queryset)


@extend_schema(tags=["stream-engine"], responses={200: ParticipantOutputSerializer})
class ParticipantDetailView(DeletableStateDetailView):
    output_serializer = ParticipantOutputSerializer
    queryset = staticmethod(selectors.participant_queryset)
    not_found = ParticipantNotFound
    delete_live = staticmethod(lambda object_id: control.participant_drop(participant_id=object_id))


@extend_schema(tags=["stream-engine"], responses={200: PublicationOutputSerializer})
class PublicationDetailView(DeletableStateDetailView):
    output_serializer = PublicationOutputSerializer
    queryset = staticmethod(selectors.publication_queryset)
    not_found = PublicationNotFound
    delete_live = staticmethod(lambda object_id: control.publication_delete(publication_id=object_id))


@extend_schema(tags=["stream-engine"], responses={200: SubscriptionOutputSerializer})
class SubscriptionDetailView(DeletableStateDetailView):
    output_serializer = SubscriptionOutputSerializer
    queryset = staticmethod(selectors.subscription_queryset)
    not_found = SubscriptionNotFound
    delete_live = staticmethod(lambda object_id: control.subscription_delete(subscription_id=object_id))


@extend_schema(tags=["stream-engine"], responses={200: NodeOutputSerializer})
class NodeDetailView(StateDetailView):
    output_serializer = NodeOutputSerializer
    queryset = staticmethod(selectors.node_queryset)
    not_found = NodeNotFound
