"""Routes of the management resources over the live engine (participants, streams).

Both API versions (``/v1/`` and ``/v1.1/``) and optional trailing slashes; the version picks
the stream form.
"""

from django.urls import re_path

from conference import live_views

ROOM = r"^(?P<version>v1|v1\.1)/rooms/(?P<room_id>[^/]+)"

urlpatterns: list = [
    re_path(rf"{ROOM}/participants/?$", live_views.ParticipantListView.as_view(), name="live-participants"),
    re_path(
        rf"{ROOM}/participants/(?P<participant_id>[^/]+)/?$",
        live_views.ParticipantDetailView.as_view(),
        name="live-participant",
    ),
    re_path(rf"{ROOM}/streams/?$", live_views.StreamListView.as_view(), name="live-streams"),
    re_path(rf"{ROOM}/streams/(?P<stream_id>[^/]+)/?$", live_views.StreamDetailView.as_view(), name="live-stream"),
]
