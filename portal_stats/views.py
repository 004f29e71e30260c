"""portal_stats HTTP API: tracker-api registration, viewer reports, time series (thin views)."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BaseAuthentication, SessionAuthentication, TokenAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from portal_stats import conf, selectors, services
from portal_stats.authentication import (
    ClientKeyAuthentication,
    ReadKeyOrOperator,
    WriteKeyOrOperator,
    client_scope,
)
from portal_stats.errors import ERROR_FORMAT
from portal_stats.models import ALL, ClientKey
from portal_stats.serializers import IdOutputSerializer, ReportsAcceptedSerializer, ViewerReportBatchSerializer

UUID_RE = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
ERROR_RESPONSE = OpenApiResponse(description='{"detail": "<message>", "code": "<kind>"}')
AUTH_RESPONSES = {
    401: OpenApiResponse(description="no or unknown key (code unauthenticated)"),
    403: OpenApiResponse(description="a key of another client or kind, or a non-staff user (code forbidden)"),
}
# A new client's keys: the spec fixes the body to {"id": N}, so they travel in headers, once.
KEY_HEADERS = {ClientKey.WRITE: "X-Portal-Write-Key", ClientKey.READ: "X-Portal-Read-Key"}


class PortalView(APIView):
    """Trackers by write key; operators (staff) by session or token; see portal_stats.authentication."""

    error_format = ERROR_FORMAT
    authentication_classes = [ClientKeyAuthentication, TokenAuthentication, SessionAuthentication]
    permission_classes = [WriteKeyOrOperator]

    def get_authenticators(self) -> list[BaseAuthentication]:
        # Open mode ignores credentials altogether, so a stale key in a demo player is no 401.
        return [] if conf.get("OPEN") else super().get_authenticators()


def _id_response(obj: object, created: bool) -> Response:
    return Response(IdOutputSerializer(obj).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


GET_OR_INSERT_RESPONSES = {
    201: IdOutputSerializer,
    200: IdOutputSerializer,
    400: ERROR_RESPONSE,
    **AUTH_RESPONSES,
}


class ClientGetOrInsertView(PortalView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200)
        uuid = serializers.RegexField(UUID_RE, max_length=64, help_text="Your external key for the client.")

        class Meta:
            ref_name = "PortalClientInput"

    @extend_schema(
        tags=["portal tracker-api"],
        summary="Get or insert client",
        request=InputSerializer,
        responses=GET_OR_INSERT_RESPONSES,
        examples=[OpenApiExample("ACME TV", value={"name": "ACME TV", "uuid": "11111111"}, request_only=True)],
        description=(
            "Returns the client's id: 201 when created, 200 when the uuid already exists (name unchanged). "
            "Creating a client takes an operator (staff session or token); the 201 carries the new "
            "client's keys once, in the headers X-Portal-Write-Key and X-Portal-Read-Key. A tracker may "
            "look up its own client's id with its write key."
        ),
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        scope = client_scope(request)
        if scope is not None:
            return _id_response(selectors.client_get(key=data.validated_data["uuid"], only_client=scope), False)
        client, keys = services.client_register(**data.validated_data)
        response = _id_response(client, bool(keys))
        for kind, key in keys.items():
            response[KEY_HEADERS[kind]] = key
        if keys:
            response["Cache-Control"] = "no-store"
        return response


class StreamGetOrInsertView(PortalView):
    class InputSerializer(serializers.Serializer):
        client = serializers.IntegerField(
            min_value=1, max_value=services.MAX_ID, help_text="Client id from Get or Insert Client."
        )
        cdn_stream = serializers.URLField(max_length=1024, help_text="CDN stream (manifest) URL.")

        class Meta:
            ref_name = "PortalStreamInput"

    @extend_schema(
        tags=["portal tracker-api"],
        summary="Get or insert stream",
        request=InputSerializer,
        responses=GET_OR_INSERT_RESPONSES,
        examples=[
            OpenApiExample(
                "Big Buck Bunny",
                value={
                    "client": 1,
                    "cdn_stream": "http://cdn2.viblast.com/streams/big_buck_bunny/adaptive/975k/stream.m3u8",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _id_response(
            *services.stream_get_or_insert(
                client_id=data.validated_data["client"],
                cdn_stream=data.validated_data["cdn_stream"],
                only_client=client_scope(request),
            )
        )


class QualityGetOrInsertView(PortalView):
    class InputSerializer(serializers.Serializer):
        stream = serializers.IntegerField(
            min_value=1, max_value=services.MAX_ID, help_text="Stream id from Get or Insert Stream."
        )
        bitrate = serializers.IntegerField(min_value=1, max_value=services.MAX_BITRATE, help_text="kbps")

        class Meta:
            ref_name = "PortalQualityInput"

    @extend_schema(
        tags=["portal tracker-api"],
        summary="Get or insert stream quality",
        request=InputSerializer,
        responses=GET_OR_INSERT_RESPONSES,
        examples=[OpenApiExample("975 kbps", value={"stream": 1, "bitrate": 975}, request_only=True)],
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _id_response(
            *services.quality_get_or_insert(
                stream_id=data.validated_data["stream"],
                bitrate=data.validated_data["bitrate"],
                only_client=client_scope(request),
            )
        )


REPORT_EXAMPLE = {
    "batch": "9f1c2e7a-viewer-1-0017",
    "reports": [
        {
            "session": "9f1c2e7a-viewer-1",
            "stream": 1,
            "bitrate": 975,
            "browser": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
            "webrtc": True,
            "down_cdn": 412000,
            "down_swarm": 820000,
            "up_swarm": 640000,
            "rebuffer_ms": 0,
        },
        {
            "session": "4411aa-viewer-2",
            "client": "11111111",
            "cdn_stream": "http://cdn2.viblast.com/streams/big_buck_bunny/adaptive/975k/stream.m3u8",
            "bitrate": 975,
            "browser": "ie",
            "webrtc": False,
            "down_cdn": 1230000,
            "startup_ms": 850,
        },
    ],
}


class ViewerReportsView(PortalView):
    @extend_schema(
        tags=["portal tracker-api"],
        summary="Post viewer reports (batched)",
        request=ViewerReportBatchSerializer,
        responses={
            202: ReportsAcceptedSerializer,
            200: OpenApiResponse(ReportsAcceptedSerializer, description="batch key already accepted: nothing stored"),
            400: ERROR_RESPONSE,
            413: ERROR_RESPONSE,
            **AUTH_RESPONSES,
        },
        examples=[OpenApiExample("Two viewers", value=REPORT_EXAMPLE, request_only=True)],
        description=(
            "Players (or a tracker on their behalf) post byte deltas per viewer session, every ~10 s. "
            'Body: {"batch": "<optional idempotency key>", "reports": [...]} or a bare list. '
            "All-or-nothing: the first invalid report (named by index) rejects the batch; a batch key "
            "already accepted answers 200 with duplicate=true and stores nothing. Streams given by client + cdn_stream and qualities given by bitrate "
            "are registered if new. Reports are folded into minute buckets by the aggregator. "
            "See docs/portal-stats.md for a player snippet."
        ),
    )
    def post(self, request: Request) -> Response:
        body, scope = request.data, client_scope(request)
        if isinstance(body, dict):
            accepted = services.reports_ingest(reports=body.get("reports"), batch=body.get("batch"), only_client=scope)
        else:
            accepted = services.reports_ingest(reports=body, only_client=scope)
        if accepted is None:
            return Response({"accepted": 0, "duplicate": True}, status=status.HTTP_200_OK)
        return Response({"accepted": accepted}, status=status.HTTP_202_ACCEPTED)


class TimeSeriesView(PortalView):
    permission_classes = [ReadKeyOrOperator]

    @extend_schema(
        tags=["portal stats"],
        summary="Time series of one metric",
        parameters=[
            OpenApiParameter("range", str, OpenApiParameter.PATH, description="<from>-<until>, Unix seconds"),
            OpenApiParameter("metric", str, OpenApiParameter.PATH, enum=list(selectors.METRICS)),
            OpenApiParameter("client", str, OpenApiParameter.PATH, description="Client uuid, or numeric id"),
            OpenApiParameter(
                "X-Stats-Resolution",
                str,
                OpenApiParameter.HEADER,
                response=[200],
                enum=["minute", "hour", "day"],
                description="Which buckets served the range (minute data, hour or day rollups)",
            ),
            OpenApiParameter("X-Stats-Step", int, OpenApiParameter.HEADER, response=[200], description="Seconds"),
        ],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description=(
                    "[[value, timestamp], ...]; value null where no data. Headers X-Stats-Resolution "
                    "(minute|hour|day) and X-Stats-Step (seconds) say which data served the range."
                ),
                examples=[
                    OpenApiExample(
                        "full.count, 1431654240-1431654840 (abridged)",
                        value=[[535.0, 1431654300], [531.0, 1431654360], [None, 1431654900]],
                    )
                ],
            ),
            400: ERROR_RESPONSE,
            404: ERROR_RESPONSE,
            **AUTH_RESPONSES,
        },
        description="Takes the client's read key (or an operator); a key of another client is 403.",
    )
    def get(
        self,
        request: Request,
        range: str,
        metric: str,
        client: str,
        stream: str | None = None,
        quality: str | None = None,
    ) -> HttpResponse:
        start, until = selectors.parse_range(range)
        client_obj = selectors.client_get(key=client, only_client=client_scope(request))
        stream_id = quality_id = ALL
        if stream is not None:
            stream_obj = selectors.stream_get(client=client_obj, stream_id=stream)
            stream_id = stream_obj.id
            if quality is not None:
                quality_id = selectors.quality_get(stream=stream_obj, quality_id=quality).id
        series = selectors.time_series(
            metric=metric, start=start, until=until, client_id=client_obj.id, stream_id=stream_id, quality_id=quality_id
        )
        # The body is serialized by the selector (see TimeSeries.to_json): a week is 10,081 pairs.
        return HttpResponse(
            series.to_json(),
            content_type="application/json",
            headers={"X-Stats-Resolution": series.resolution, "X-Stats-Step": str(series.step)},
        )


@staff_member_required
def dashboard_page(request: HttpRequest) -> HttpResponse:
    """Operators' statistics page: viewers and CDN vs P2P traffic from the time-series API above."""
    return render(
        request,
        "portal_stats/dashboard.html",
        {"clients": selectors.registry_tree(), "metrics": list(selectors.METRICS)},
    )
