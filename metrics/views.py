"""peermetrics HTTP API: the SDK's public routes and the authenticated dashboard routes.

SDK routes read a JSON body whatever the Content-Type (the SDK sends ``text/plain``), take
the token from the body, and answer JSON on every 2xx (the SDK calls ``.json()``). Errors
are ``{"error_code","message"}`` via :mod:`metrics.errors`; CORS is added by
:mod:`metrics.middleware`. ``/stats`` is a plain async Django view (DRF has no async
views) so that requests can be committed in groups (:mod:`metrics.ingest`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from metrics import ingest, selectors, tokens
from metrics.authentication import DashboardTokenAuthentication
from metrics.errors import ERROR_FORMAT, PeermetricsError
from metrics.models import Session, Summary
from metrics.serializers import (
    AppIn,
    AppOut,
    AppUpdateIn,
    BrowserEventIn,
    ConferenceDetailOut,
    ConferenceListQuery,
    ConferenceOut,
    ConnectionBatchIn,
    ConnectionOut,
    EventListQuery,
    EventOut,
    GetUserMediaIn,
    InitializeIn,
    IssueOut,
    JsonBodyParser,
    ListQuery,
    OrganizationIn,
    OrganizationOut,
    PageQuery,
    ParticipantOut,
    SearchQuery,
    SessionIn,
    SessionOut,
    SessionUpdateIn,
    TrackIn,
    TrackOut,
    TrackUpdateIn,
    connection_event,
    connection_uuid,
    event_time,
    parse_body,
    query_params,
    require,
)
from metrics.services import connections, dashboard, ingestion
from metrics.summary import summary_build, summary_is_stale
from metrics.tasks import summary_queue
from owt.throttling import ClientScopedThrottle

SDK_TAG = ["peermetrics SDK"]
DASHBOARD_TAG = ["peermetrics dashboard"]
ANY_JSON = inline_serializer("SdkBody", fields={"token": serializers.CharField(required=False)})
EMPTY = inline_serializer("SdkEmpty", fields={})


# --- SDK routes ------------------------------------------------------------------------------


class SdkView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    error_format = ERROR_FORMAT

    def body(self, request: Request) -> dict:
        return parse_body(request._request.body)

    def session_and_body(self, request: Request) -> tuple[Session, dict, datetime]:
        body = self.body(request)
        session = selectors.session_from_token(body.get("token"))
        return session, body, event_time(body.get("delta"))


class InitializeView(SdkView):
    # Each call creates rows: limited per client address (owt.throttling).
    throttle_classes = [ClientScopedThrottle]
    throttle_scope = "metrics_initialize"

    @extend_schema(
        tags=SDK_TAG,
        request=ANY_JSON,
        responses={
            200: inline_serializer(
                "InitializeOut",
                fields={
                    "token": serializers.CharField(),
                    "getStatsInterval": serializers.IntegerField(),
                    "batchConnectionEvents": serializers.BooleanField(),
                    "time": serializers.FloatField(),
                },
            )
        },
        examples=[
            OpenApiExample(
                "SDK initialize",
                request_only=True,
                value={
                    "conferenceId": "room-42",
                    "conferenceName": "Standup",
                    "userId": "user-7",
                    "userName": "Ana",
                    "apiKey": "0f3c9a2b7d4e4f1a9b8c7d6e5f4a3b2c",
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        body = self.body(request)
        require(body, "conferenceId", "userId", "apiKey")
        app = selectors.app_for_key(api_key=body["apiKey"])  # before the rest of the body (the reference's order)
        conference, participant = ingestion.conference_initialize(
            app=app, init=InitializeIn.parse(body), origin=request.headers.get("Origin", "")
        )
        return Response(
            {
                "token": tokens.init_token(
                    participant_id=str(participant.pk),
                    conference_id=str(conference.pk),
                    key_generation=app.key_generation,
                ),
                # An integer (webrtc-stats throws otherwise); the app's own setting wins.
                "getStatsInterval": int(app.interval or settings.METRICS_STATS_INTERVAL_MS),
                # Batching is broken in the SDK (addConnection gets no ids): always off.
                "batchConnectionEvents": False,
                "time": time.time(),
            }
        )


class SessionsView(SdkView):
    @extend_schema(
        tags=SDK_TAG,
        request=ANY_JSON,
        responses={200: inline_serializer("SessionTokenOut", fields={"token": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        body = self.body(request)
        claims = tokens.verify("init", body.get("token"), ("p", "c"))
        now = event_time(body.get("delta"))
        conference, participant = selectors.init_token_subjects(claims=claims)
        session = ingestion.session_create(
            conference=conference, participant=participant, details=SessionIn.parse(body), now=now
        )
        token = tokens.session_token(session_id=str(session.pk), key_generation=claims.get("g", 0))
        return Response({"token": token})

    @extend_schema(
        tags=SDK_TAG,
        request=ANY_JSON,
        responses={200: inline_serializer("SessionUpdateOut", fields={"data": SessionOut()})},
    )
    def put(self, request: Request) -> Response:
        session, body, _ = self.session_and_body(request)
        session = ingestion.session_update(session=session, changes=SessionUpdateIn.parse(body))
        return Response({"data": SessionOut(session).data})


class GetUserMediaView(SdkView):
    @extend_schema(tags=SDK_TAG, request=ANY_JSON, responses={200: EMPTY})
    def post(self, request: Request) -> Response:
        session, body, now = self.session_and_body(request)
        ingestion.gum_event_record(session=session, data=GetUserMediaIn.parse(body).data, now=now)
        return Response("")


class BrowserEventView(SdkView):
    @extend_schema(tags=SDK_TAG, request=ANY_JSON, responses={200: EMPTY})
    def post(self, request: Request) -> Response:
        session, body, now = self.session_and_body(request)
        ingestion.browser_event_record(session=session, event=BrowserEventIn.parse(body), now=now)
        return Response("")


class ConnectionEventView(SdkView):
    @extend_schema(
        tags=SDK_TAG,
        request=ANY_JSON,
        responses={
            200: inline_serializer(
                "AddConnectionOut",
                fields={"peer_id": serializers.UUIDField(), "connection_id": serializers.UUIDField()},
            )
        },
        examples=[
            OpenApiExample(
                "addConnection",
                request_only=True,
                value={
                    "token": "…",
                    "eventName": "addConnection",
                    "peerId": "user-9",
                    "peerName": "Bob",
                    "connectionState": "new",
                    "isSfu": False,
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        session, body, now = self.session_and_body(request)
        answer = ingestion.connection_event_record(session=session, event=connection_event(body), now=now)
        return Response(answer or "")


class ConnectionBatchView(SdkView):
    """Both the reference's ``{token, delta, data:[…]}`` and the SDK's bare array (no token: refused).

    All or nothing: a failing item refuses the request with its error, naming the item.
    """

    @extend_schema(
        tags=SDK_TAG,
        request=ANY_JSON,
        responses={200: inline_serializer("BatchOut", fields={"data": serializers.ListField()})},
    )
    def post(self, request: Request) -> Response:
        batch = ConnectionBatchIn.parse(parse_body(request._request.body, allow_list=True))
        session = selectors.session_from_token(batch.token)
        answers = ingestion.connection_batch_record(session=session, events=batch.events())
        return Response({"data": [answer or {} for answer in answers]})


class TracksView(SdkView):
    @extend_schema(
        tags=SDK_TAG, request=ANY_JSON, responses={200: inline_serializer("TrackOutWrap", fields={"data": TrackOut()})}
    )
    def post(self, request: Request) -> Response:
        session, body, now = self.session_and_body(request)
        # The connection is looked up before the rest of the body is read (the reference's order of errors).
        connection = selectors.session_connection(
            session=session, connection_id=connection_uuid(body.get("connectionId"))
        )
        track = ingestion.track_create(session=session, connection=connection, remote=TrackIn.parse(body), now=now)
        return Response({"data": TrackOut(track).data})

    @extend_schema(
        tags=SDK_TAG,
        request=ANY_JSON,
        responses={200: inline_serializer("TrackUpdateWrap", fields={"data": TrackOut()})},
    )
    def put(self, request: Request) -> Response:
        session, body, now = self.session_and_body(request)
        track = ingestion.track_update(session=session, change=TrackUpdateIn.parse(body), now=now)
        return Response({"data": TrackOut(track).data})


async def stats_answer(raw: bytes) -> tuple[int, Any]:
    """POST /stats: one getStats sample of one connection, answered once committed.

    Shared by the Django view below and the ASGI fast path (:mod:`metrics.asgi`).
    """
    try:
        body = parse_body(raw)
        claims = tokens.verify("session", body.get("token"), ("s",))
        now = event_time(body.get("delta"))
        await ingest.stats_accept(claims=claims, body=body, now=now)
    except Exception as exc:  # noqa: BLE001 - every failure answers in the API's envelope
        return ERROR_FORMAT.payload(exc)
    return 200, ""


class StopConferenceView(SdkView):
    """Server to server: end a call now (later stats get ``connection_ended``)."""

    @extend_schema(
        tags=SDK_TAG,
        request=inline_serializer(
            "StopConferenceIn", fields={"apiKey": serializers.CharField(), "conferenceId": serializers.CharField()}
        ),
        responses={200: EMPTY},
    )
    def post(self, request: Request) -> Response:
        body = self.body(request)
        conference = selectors.conference_for_key(
            app=selectors.app_for_key(api_key=body.get("apiKey")), conference_id=body.get("conferenceId")
        )
        connections.conference_stop(conference_id=conference.pk, now=event_time(None))
        return Response({})


class ConferenceUrlView(SdkView):
    """Server to server: the dashboard address of a conference (``conferenceId``)."""

    @extend_schema(
        tags=SDK_TAG,
        request=inline_serializer(
            "GetUrlIn", fields={"apiKey": serializers.CharField(), "conferenceId": serializers.CharField()}
        ),
        responses={200: inline_serializer("GetUrlOut", fields={"url": serializers.URLField()})},
    )
    def post(self, request: Request) -> Response:
        body = self.body(request)
        conference = selectors.conference_for_key(
            app=selectors.app_for_key(api_key=body.get("apiKey")), conference_id=body.get("conferenceId")
        )
        return Response(
            {"url": request.build_absolute_uri(f"{reverse('metrics:dashboard')}#conference={conference.pk}")}
        )


@csrf_exempt
async def stats_view(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return ERROR_FORMAT.response(PeermetricsError("method_not_allowed"))
    status, body = await stats_answer(request.body)
    return JsonResponse(body, status=status, safe=False)


# --- dashboard routes ----------------------------------------------------------------------------


class DashboardView(APIView):
    # Token first: an anonymous script gets 401 with WWW-Authenticate, a browser its session.
    authentication_classes = [DashboardTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    parser_classes = [JsonBodyParser]
    error_format = ERROR_FORMAT

    @staticmethod
    def page(queryset: Any, serializer: type[serializers.Serializer], query: dict) -> Response:
        """``?limit`` (default 50, max 200) and ``?offset`` (checked in ``query``) → ``{"results", "count"}``."""
        offset, limit = query["offset"], query["limit"]
        return Response(
            {"results": serializer(queryset[offset : offset + limit], many=True).data, "count": queryset.count()}
        )


@cache
def page_of(serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of a list answer: ``{"results": [...], "count"}``."""
    return inline_serializer(
        f"{serializer.__name__.removesuffix('Out')}Page",
        fields={"results": serializer(many=True), "count": serializers.IntegerField()},
    )


@cache
def data_of(serializer: type[serializers.Serializer]) -> serializers.Serializer:
    """The schema of a single-object answer: ``{"data": {...}}``."""
    return inline_serializer(f"{serializer.__name__.removesuffix('Out')}Data", fields={"data": serializer()})


class OrganizationListView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG,
        parameters=[PageQuery],
        responses={200: page_of(OrganizationOut)},
        operation_id="metrics_organizations_list",
    )
    def get(self, request: Request) -> Response:
        query = query_params(PageQuery, request.query_params)
        return self.page(selectors.organization_list(user=request.user), OrganizationOut, query)

    @extend_schema(tags=DASHBOARD_TAG, request=OrganizationIn, responses={201: data_of(OrganizationOut)})
    def post(self, request: Request) -> Response:
        data = OrganizationIn(data=request.data)
        data.is_valid(raise_exception=True)
        organization = dashboard.organization_create(user=request.user, **data.validated_data)
        return Response({"data": OrganizationOut(organization).data}, status=201)


class OrganizationDetailView(DashboardView):
    @extend_schema(tags=DASHBOARD_TAG, responses={200: data_of(OrganizationOut)})
    def get(self, request: Request, pk: str) -> Response:
        return Response({"data": OrganizationOut(selectors.organization_get(user=request.user, pk=pk)).data})

    @extend_schema(tags=DASHBOARD_TAG, request=OrganizationIn, responses={200: data_of(OrganizationOut)})
    def put(self, request: Request, pk: str) -> Response:
        organization = selectors.organization_get(user=request.user, pk=pk)
        data = OrganizationIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            {
                "data": OrganizationOut(
                    dashboard.organization_update(organization=organization, **data.validated_data)
                ).data
            }
        )

    @extend_schema(tags=DASHBOARD_TAG, responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        dashboard.organization_delete(organization=selectors.organization_get(user=request.user, pk=pk))
        return Response(status=204)


class AppListView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG, parameters=[PageQuery], responses={200: page_of(AppOut)}, operation_id="metrics_apps_list"
    )
    def get(self, request: Request) -> Response:
        return self.page(selectors.app_list(user=request.user), AppOut, query_params(PageQuery, request.query_params))

    @extend_schema(tags=DASHBOARD_TAG, request=AppIn, responses={201: data_of(AppOut)})
    def post(self, request: Request) -> Response:
        data = AppIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        organization = selectors.organization_get(user=request.user, pk=fields.pop("organization"))
        return Response({"data": AppOut(dashboard.app_create(organization=organization, **fields)).data}, status=201)


class AppDetailView(DashboardView):
    @extend_schema(tags=DASHBOARD_TAG, responses={200: data_of(AppOut)})
    def get(self, request: Request, pk: str) -> Response:
        return Response({"data": AppOut(selectors.app_get(user=request.user, pk=pk)).data})

    @extend_schema(tags=DASHBOARD_TAG, request=AppUpdateIn, responses={200: data_of(AppOut)})
    def put(self, request: Request, pk: str) -> Response:
        app = selectors.app_get(user=request.user, pk=pk)
        data = AppUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"data": AppOut(dashboard.app_update(app=app, **data.validated_data)).data})

    @extend_schema(tags=DASHBOARD_TAG, responses={204: None})
    def delete(self, request: Request, pk: str) -> Response:
        dashboard.app_delete(app=selectors.app_get(user=request.user, pk=pk))
        return Response(status=204)


class AppResetKeyView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG,
        request=None,
        responses={200: inline_serializer("ResetKeyOut", fields={"api_key": serializers.CharField()})},
    )
    def post(self, request: Request, pk: str) -> Response:
        """A new api key; the SDK tokens issued under the old one stop working at once."""
        app = dashboard.app_reset_key(app=selectors.app_get(user=request.user, pk=pk))
        return Response({"api_key": app.api_key})


class ConferenceListView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG,
        parameters=[ConferenceListQuery],
        responses={200: page_of(ConferenceOut)},
        operation_id="metrics_conferences_list",
    )
    def get(self, request: Request) -> Response:
        query = query_params(ConferenceListQuery, request.query_params)
        return self.page(selectors.conference_list(user=request.user, params=query), ConferenceOut, query)


class ConferenceDetailView(DashboardView):
    @extend_schema(tags=DASHBOARD_TAG, responses={200: data_of(ConferenceDetailOut)})
    def get(self, request: Request, pk: str) -> Response:
        return Response({"data": ConferenceDetailOut(selectors.conference_get(user=request.user, pk=pk)).data})


class ConferenceEventsView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG,
        parameters=[EventListQuery],
        responses={200: page_of(EventOut)},
        operation_id="metrics_conference_events_list",
    )
    def get(self, request: Request, pk: str) -> Response:
        conference = selectors.conference_get(user=request.user, pk=pk)
        query = query_params(EventListQuery, request.query_params)
        return self.page(
            selectors.conference_events(conference=conference, event_type=query.get("type")), EventOut, query
        )


class ConferenceGraphsView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG,
        parameters=[
            OpenApiParameter(
                "rebuild", str, enum=["1", "true", "now"], description="queue a rebuild; now: build in this request"
            )
        ],
        responses={
            200: inline_serializer(
                "GraphsOut",
                fields={
                    "ongoing": serializers.BooleanField(),
                    "building": serializers.BooleanField(),
                    "summary": serializers.DictField(required=False),
                },
            )
        },
    )
    def get(self, request: Request, pk: str) -> Response:
        """The summary; queues a (re)build in Celery when there is none or new stats arrived.

        ``?rebuild=now`` builds it in this request instead (the dashboard's button when no data
        worker runs: reading every stats row of the call, it takes a moment on long calls).
        """
        conference = selectors.conference_get(user=request.user, pk=pk)
        rebuild = request.query_params.get("rebuild")
        if rebuild == "now":
            summary_build(conference_id=conference.pk)
        summary = Summary.objects.filter(conference=conference, status=Summary.Status.DONE).first()
        building = summary is None or rebuild in ("1", "true") or summary_is_stale(summary)
        if building:
            summary_queue(conference_id=conference.pk)
        body: dict[str, Any] = {"ongoing": conference.ongoing, "building": building}
        if summary is not None:
            body["summary"] = summary.data
        return Response(body)


def _list_view(name: str, selector: Callable, serializer: type[serializers.Serializer]) -> type[DashboardView]:
    class ListView(DashboardView):
        @extend_schema(
            tags=DASHBOARD_TAG,
            parameters=[ListQuery],
            responses={200: page_of(serializer)},
            operation_id=f"metrics_{name}_list",
        )
        def get(self, request: Request) -> Response:
            query = query_params(ListQuery, request.query_params)
            return self.page(selector(user=request.user, params=query), serializer, query)

    ListView.__name__ = f"{name.title()}ListView"
    return ListView


def _detail_view(name: str, selector: Callable, serializer: type[serializers.Serializer]) -> type[DashboardView]:
    class DetailView(DashboardView):
        @extend_schema(
            tags=DASHBOARD_TAG, responses={200: data_of(serializer)}, operation_id=f"metrics_{name}_retrieve"
        )
        def get(self, request: Request, pk: str) -> Response:
            return Response({"data": serializer(selector(user=request.user, pk=pk)).data})

    DetailView.__name__ = f"{name.title()}DetailView"
    return DetailView


def _summary_view(name: str, selector: Callable, *, own_envelope: bool = False) -> type[DashboardView]:
    """A peermetrics aggregate route: ``?appId`` (required) and ``created_at_*`` dates.

    The answer is ``{"data": ...}``; selectors that add totals beside it (``own_envelope``) give the whole body.
    """

    class SummaryView(DashboardView):
        @extend_schema(
            tags=DASHBOARD_TAG,
            parameters=[ListQuery],
            responses={
                200: inline_serializer(f"{name.title().replace('-', '')}Summary", {"data": serializers.JSONField()})
            },
            operation_id=f"metrics_{name.replace('-', '_')}_summary",
        )
        def get(self, request: Request) -> Response:
            result = selector(user=request.user, params=query_params(ListQuery, request.query_params))
            return Response(result if own_envelope else {"data": result})

    SummaryView.__name__ = f"{name.title().replace('-', '')}SummaryView"
    return SummaryView


ConferenceSummaryView = _summary_view("conferences", selectors.conference_day_summary)
ConferenceDurationSummaryView = _summary_view("conference-duration", selectors.conference_duration_summary)
ConferenceParticipantCountSummaryView = _summary_view(
    "conference-participant-count", selectors.conference_participant_count_summary, own_envelope=True
)
SessionSummaryView = _summary_view("sessions", selectors.session_summary)
ConnectionSummaryView = _summary_view("connections", selectors.connection_summary)
ConnectionSetupTimeSummaryView = _summary_view("connection-setup-time", selectors.connection_setup_time_summary)
IssueSummaryView = _summary_view("issues", selectors.issue_summary)
GumSummaryView = _summary_view("get-user-media", selectors.gum_error_summary, own_envelope=True)

ParticipantListView = _list_view("participants", selectors.participant_list, ParticipantOut)
ParticipantDetailView = _detail_view("participants", selectors.participant_get, ParticipantOut)
SessionListView = _list_view("sessions", selectors.session_list, SessionOut)
SessionDetailView = _detail_view("sessions", selectors.session_get, SessionOut)
ConnectionListView = _list_view("connections", selectors.connection_list, ConnectionOut)
ConnectionDetailView = _detail_view("connections", selectors.connection_get, ConnectionOut)
IssueListView = _list_view("issues", selectors.issue_list, IssueOut)
IssueDetailView = _detail_view("issues", selectors.issue_get, IssueOut)


class SearchView(DashboardView):
    @extend_schema(
        tags=DASHBOARD_TAG,
        parameters=[SearchQuery],
        responses={200: inline_serializer("SearchOut", fields={"data": serializers.ListField()})},
    )
    def get(self, request: Request) -> Response:
        if not request.query_params.get("query", "").strip():
            raise PeermetricsError("missing_parameters", "query is required")
        query = query_params(SearchQuery, request.query_params)["query"]
        return Response({"data": selectors.search(user=request.user, query=query)})


def by_method(**views: Callable) -> Callable:
    """One path, several views: ``/sessions`` is the SDK's (POST/PUT) and the dashboard's (GET)."""

    @csrf_exempt
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return views.get(request.method.lower(), views["default"])(request, *args, **kwargs)

    return view


@login_required(login_url="metrics:login")
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """The dashboard: plain HTML + JS calling the routes above with the session cookie."""
    return render(request, "metrics/dashboard.html")
