"""OWT management API routes (/services, /v1/..., /v1.1/...).

Every ``/v1/`` route also answers under ``/v1.1/`` and with or without a trailing slash;
the slash variants are left out of the OpenAPI schema to keep it readable.
"""

from django.urls import URLPattern, include, path

from conference import views

app_name = "conference"


def routes(route: str, view: type, name: str) -> list[URLPattern]:
    """``route`` and ``route/``; only the first is documented."""
    return [path(route, view.as_view(), name=name), path(f"{route}/", view.as_view(schema=None))]


urlpatterns: list = [
    # Live resources over the engine (participants, streams): conference/live_urls.py
    path("", include("conference.live_urls")),
    *routes("services", views.ServiceListView, "service-list"),
    *routes("services/<str:service_id>", views.ServiceDetailView, "service-detail"),
]
for version in ("v1", "v1.1"):
    suffix = version.replace(".", "_")
    urlpatterns += [
        *routes(f"{version}/rooms", views.RoomListView, f"room-list-{suffix}"),
        *routes(f"{version}/rooms/<str:room_id>", views.RoomDetailView, f"room-detail-{suffix}"),
        *routes(f"{version}/rooms/<str:room_id>/tokens", views.RoomTokenView, f"room-tokens-{suffix}"),
    ]
