"""WebSocket routes (signaling) served by the portal."""

from django.urls import path

from streamengine.consumers import SignalingConsumer

websocket_urlpatterns: list = [path("ws/signaling/", SignalingConsumer.as_asgi())]
