"""WSGI entry point, for HTTP-only deployments (signaling needs the ASGI app)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
application = get_wsgi_application()
