"""OWT management API routes (/services, /v1/..., /v1.1/...)."""

from django.urls import include, path

app_name = "conference"
urlpatterns: list = [
    # Live resources over the engine (participants, streams): conference/live_urls.py
    path("", include("conference.live_urls")),
]
