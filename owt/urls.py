"""Root URL map: each API under its own prefix, plus admin, schema and health."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from owt.views import HealthView, admin_login, favicon, landing_page
from streamengine.streaming_files import streaming_file

# Swagger UI and ReDoc are static files of drf-spectacular-sidecar (SPECTACULAR_SETTINGS), so
# they work offline. ReDoc runs a worker from a blob: URL, which OWT_TLS's CSP must allow; the
# split view serves Swagger UI's init script as a file, so no inline script is needed.
DOCS_CSP = {"worker-src": ["blob:"]}

urlpatterns = [
    path("", landing_page, name="landing"),
    path("favicon.ico", favicon, name="favicon"),
    # Before the admin's own routes: the same login view with a lockout (owt.views.admin_login).
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", csp_update(DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="swagger-ui"),
    path(
        "api/redoc/",
        # The template drops ReDoc's Google Fonts links (offline, the system fonts are used).
        csp_update(DOCS_CSP)(SpectacularRedocView.as_view(url_name="schema", template_name="owt/redoc.html")),
        name="redoc",
    ),
    path("health/", HealthView.as_view(), name="health"),
    # Local HLS/DASH streaming-outs (settings.MEDIA_URL + "streaming/"), for plain players.
    path("media/streaming/<str:room_id>/<str:job_id>/<str:name>", streaming_file, name="streaming-file"),
    # OWT stream engine (/v1.1/stream-engine/...) before conference's /v1.1/ routes.
    path("", include("streamengine.urls")),
    # OWT management API: /services, /v1/rooms..., /v1.1/rooms...
    path("", include("conference.urls")),
    path("egress/", include("egress.urls")),
    path("metrics/v1/", include("metrics.urls")),
    path("portal/", include("portal_stats.urls")),
    path("demo/", include("conference.demo_urls")),
]

handler404 = "owt.errors.not_found_view"
handler500 = "owt.errors.server_error_view"
