"""WebSocket routes (signaling) served by the portal."""

from django.urls import path  # noqa: F401

websocket_urlpatterns: list = []
