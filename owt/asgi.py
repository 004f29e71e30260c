"""ASGI entry point: socket.io signaling (OWT JS SDK), HTTP through Django, WebSockets through Channels."""

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does before making its handler

from django.conf import settings  # noqa: E402

from owt.http import ThreadedASGIHandler  # noqa: E402

# Django's HTTP requests run in one hop to a pool thread each (owt/http.py), not Django's ASGIHandler.
django_asgi_app = ThreadedASGIHandler(threads=settings.OWT_HTTP_THREADS)

from channels.routing import ProtocolTypeRouter  # noqa: E402

from metrics.asgi import StatsIngestASGI  # noqa: E402
from owt.checks import refuse_insecure_start  # noqa: E402
from streamengine.routing import websocket_application  # noqa: E402
from streamengine.sio import socketio_application  # noqa: E402

refuse_insecure_start()  # daphne runs no system checks: a production portal stops here on a bad key

# Everything loaded so far (Django, the apps, DRF, aiortc …) lives as long as the process: out of
# the garbage collector's sight, a full collection no longer walks it, which paused every request
# in flight for tens of milliseconds (the p99 of the management API at a steady 200 req/s).
gc.freeze()

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
