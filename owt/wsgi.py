"""WSGI entry point, for HTTP-only deployments (signaling needs the ASGI app)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
application = get_wsgi_application()

from owt.checks import refuse_insecure_start  # noqa: E402

refuse_insecure_start()  # WSGI servers run no system checks: a production portal stops here on a bad key
