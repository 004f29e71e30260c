"""WebSocket routes (signaling) served by the portal, behind the Origin allow-list."""

from urllib.parse import ParseResult

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from streamengine.consumers import SignalingConsumer

websocket_urlpatterns: list = [path("ws/signaling/", SignalingConsumer.as_asgi())]


class SignalingOriginValidator(OriginValidator):
    """Channels' ``OriginValidator``, except that a handshake without ``Origin`` is let in:
    browsers always send one, native SDKs never do, and the allow-list guards against
    other web pages opening the socket with a visitor's browser."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        return parsed_origin is None or super().valid_origin(parsed_origin)


def websocket_application():
    """The portal's WebSocket application; ``SIGNALING_ALLOWED_ORIGINS`` is read when it is built."""
    return SignalingOriginValidator(
        AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), settings.SIGNALING_ALLOWED_ORIGINS
    )
