"""Routes of the management resources over the live engine (participants, streams, streaming-ins,
recordings, streaming-outs, analytics).

Each route answers under ``/v1/`` and ``/v1.1/`` (the version picks the stream form) and
with or without a trailing slash; the slash variants stay out of the OpenAPI schema.
"""

from django.urls import URLPattern, path

from conference import job_views, live_views


def routes(route: str, view: type, name: str, version: str) -> list[URLPattern]:
    kwargs = {"version": version}
    return [
        path(route, view.as_view(), kwargs, name=name),
        path(f"{route}/", view.as_view(schema=None), kwargs),
    ]


urlpatterns: list = []
for version in ("v1", "v1.1"):
    room = f"{version}/rooms/<str:room_id>"
    suffix = version.replace(".", "_")
    urlpatterns += [
        *routes(f"{room}/participants", live_views.ParticipantListView, f"live-participants-{suffix}", version),
        *routes(
            f"{room}/participants/<str:participant_id>",
            live_views.ParticipantDetailView,
            f"live-participant-{suffix}",
            version,
        ),
        *routes(f"{room}/streams", live_views.StreamListView, f"live-streams-{suffix}", version),
        *routes(f"{room}/streams/<str:stream_id>", live_views.StreamDetailView, f"live-stream-{suffix}", version),
        *routes(f"{room}/streaming-ins", job_views.StreamingInListView, f"streaming-ins-{suffix}", version),
        *routes(
            f"{room}/streaming-ins/<str:stream_id>", job_views.StreamingInDetailView, f"streaming-in-{suffix}", version
        ),
        *routes(f"{room}/recordings", job_views.RecordingListView, f"recordings-{suffix}", version),
        *routes(f"{room}/recordings/<str:job_id>", job_views.RecordingDetailView, f"recording-{suffix}", version),
        *routes(
            f"{room}/recordings/<str:job_id>/file",
            job_views.RecordingFileView,
            f"recording-file-{suffix}",
            version,
        ),
        *routes(f"{room}/analytics", job_views.AnalyticsListView, f"analytics-{suffix}", version),
        *routes(f"{room}/analytics/<str:job_id>", job_views.AnalyticsDetailView, f"analytic-{suffix}", version),
        *routes(f"{room}/sipcalls", job_views.SipCallListView, f"sipcalls-{suffix}", version),
        *routes(f"{room}/sipcalls/<str:job_id>", job_views.SipCallDetailView, f"sipcall-{suffix}", version),
        *routes(f"{room}/streaming-outs", job_views.StreamingOutListView, f"streaming-outs-{suffix}", version),
        *routes(
            f"{room}/streaming-outs/<str:job_id>", job_views.StreamingOutDetailView, f"streaming-out-{suffix}", version
        ),
    ]
