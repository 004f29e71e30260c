"""ASGI entry point: socket.io signaling (OWT JS SDK), HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from metrics.asgi import StatsIngestASGI  # noqa: E402
from owt.checks import refuse_insecure_start  # noqa: E402
from streamengine.routing import websocket_application  # noqa: E402
from streamengine.sio import socketio_application  # noqa: E402

refuse_insecure_start()  # daphne runs no system checks: a production portal stops here on a bad key

# /socket.io/ (polling and WebSocket) goes to socket.io; everything else to the router.
application = socketio_application(
    ProtocolTypeRouter(
        {
            # POST /metrics/v1/stats is answered before Django (metrics/asgi.py); all else is Django.
            "http": StatsIngestASGI(django_asgi_app),
            "websocket": websocket_application(),
        }
    )
)
