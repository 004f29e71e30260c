"""Mounted at /portal/. Trailing slashes are optional (the spec's GETs have none, its POSTs do)."""

from django.urls import path, re_path

from portal_stats import views

app_name = "portal_stats"

_SERIES = r"^api/stats/time/(?P<range>[^/]+)/(?P<metric>[^/]+)/clients/(?P<client>[^/]+)"

urlpatterns = [
    path("dashboard", views.dashboard_page, name="dashboard"),
    re_path(r"^tracker-api/clients/?$", views.ClientGetOrInsertView.as_view(), name="clients"),
    re_path(r"^tracker-api/streams/?$", views.StreamGetOrInsertView.as_view(), name="streams"),
    re_path(r"^tracker-api/stream-qualities/?$", views.QualityGetOrInsertView.as_view(), name="qualities"),
    re_path(r"^tracker-api/reports/?$", views.ViewerReportsView.as_view(), name="reports"),
    re_path(_SERIES + r"/?$", views.TimeSeriesView.as_view(), name="series-client"),
    re_path(_SERIES + r"/streams/(?P<stream>[^/]+)/?$", views.TimeSeriesView.as_view(), name="series-stream"),
    re_path(
        _SERIES + r"/streams/(?P<stream>[^/]+)/qualities/(?P<quality>[^/]+)/?$",
        views.TimeSeriesView.as_view(),
        name="series-quality",
    ),
]
