"""Platform-level endpoints."""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_post_parameters
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from owt.celery import app as celery_app
from owt.throttling import AdminLoginFailureThrottle, retry_after


def check_database() -> dict:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor, "ms": round((time.perf_counter() - started) * 1000, 2)}


def check_broker() -> dict:
    started = time.perf_counter()
    with celery_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        transport = conn.transport_cls
    return {"ok": True, "transport": str(transport), "ms": round((time.perf_counter() - started) * 1000, 2)}


async def _channel_round_trip() -> None:
    layer = get_channel_layer()
    channel = await layer.new_channel("health.")
    marker = uuid.uuid4().hex
    await layer.send(channel, {"type": "health.ping", "marker": marker})
    message = await asyncio.wait_for(layer.receive(channel), timeout=2)
    if message.get("marker") != marker:
        raise RuntimeError("channel layer returned another message")


def check_channel_layer() -> dict:
    started = time.perf_counter()
    async_to_sync(_channel_round_trip)()
    layer = get_channel_layer()
    return {"ok": True, "backend": type(layer).__name__, "ms": round((time.perf_counter() - started) * 1000, 2)}


CHECKS = {"database": check_database, "broker": check_broker, "channel_layer": check_channel_layer}

WORKER_PING_SECONDS = 1.0


def check_workers() -> dict:
    """Which Celery workers answer a broadcast ping (``media@host``, ``data@host`` under bin/run)."""
    replies = celery_app.control.inspect(timeout=WORKER_PING_SECONDS).ping() or {}
    names = sorted(replies)
    result: dict = {"ok": bool(names), "workers": names}
    if not names:
        result["note"] = "no worker answered: media jobs and summaries wait until one runs"
    return result


def run_checks(checks: dict) -> dict[str, dict]:
    results = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as exc:  # a health check reports every failure, whatever its type
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return results


def may_see_health_details(request: Request) -> bool:
    """Staff sessions, or ``Authorization: Bearer <HEALTH_TOKEN>`` (a monitor's) when one is set."""
    if getattr(request.user, "is_staff", False):
        return True
    expected = f"Bearer {settings.HEALTH_TOKEN}"
    given = request.headers.get("Authorization", "")
    return bool(settings.HEALTH_TOKEN) and hmac.compare_digest(given.encode(), expected.encode())


class HealthView(APIView):
    """Reachability of the database, the Celery broker and the channel layer.

    Anyone sees which checks pass; why one fails, and the timings and backends, can name
    internal hosts, so only staff and holders of ``HEALTH_TOKEN`` see them.
    """

    authentication_classes = [SessionAuthentication]

    @extend_schema(
        responses={
            200: inline_serializer("Health", {"ok": serializers.BooleanField(), "checks": serializers.DictField()}),
            503: inline_serializer(
                "HealthFailed", {"ok": serializers.BooleanField(), "checks": serializers.DictField()}
            ),
        }
    )
    def get(self, request: Request) -> Response:
        results = run_checks(CHECKS)
        ok = all(result["ok"] for result in results.values())
        if not may_see_health_details(request):
            results = {name: {"ok": result["ok"]} for name, result in results.items()}
        return Response({"ok": ok, "checks": results}, status=200 if ok else 503)


@sensitive_post_parameters()
def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin's login view, locked for a client address after too many failed logins."""
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    failures = AdminLoginFailureThrottle()
    if not failures.allow_request(request, None):
        response = HttpResponse(
            "Too many failed logins from your address; try again later.",
            status=429,
            content_type="text/plain; charset=utf-8",
        )
        response["Retry-After"] = retry_after(failures.wait())
        return response
    response = admin.site.login(request, extra_context)
    if not request.user.is_authenticated:
        failures.record_failure()
    return response


# The landing page's links: (title, URL name or path, what it is).
LANDING_LINKS = (
    ("Admin", "/admin/", "rooms, services, media jobs, peermetrics and Viblast data"),
    ("Swagger UI", "/api/docs/", "every API, try it out"),
    ("ReDoc", "/api/redoc/", "the same APIs as a reference"),
    ("OpenAPI schema", "/api/schema/", "YAML, for client generators"),
    ("Demo: quick call", "/demo/quick", "create a room and join it from two tabs"),
    ("Demo: join with a token", "/demo/", "join a room with a token from the management API"),
    ("peermetrics dashboard", "/metrics/v1/dashboard", "WebRTC call quality of your apps"),
    ("Viblast statistics", "/portal/dashboard", "P2P CDN viewers and CDN vs P2P traffic (staff)"),
    ("Health", "/health/", "JSON, for load balancers and monitors"),
)


def landing_page(request: HttpRequest) -> HttpResponse:
    """``/``: what runs (the health checks, media nodes, workers), every page, where the credentials are."""
    checks = {**CHECKS, "workers": check_workers}
    checks.update({name: import_string(path) for name, path in settings.OWT_STATUS_CHECKS.items()})
    results = run_checks(checks)
    details = may_see_health_details(request)
    rows = [
        {
            "name": name.replace("_", " "),
            "ok": result["ok"],
            # Failure reasons can name internal hosts: staff (or HEALTH_TOKEN) only, as on /health/.
            "detail": ", ".join(f"{k} {v}" for k, v in result.items() if k != "ok") if details else result.get("note"),
        }
        for name, result in results.items()
    ]
    return render(
        request,
        "owt/landing.html",
        {"checks": rows, "links": LANDING_LINKS, "var_dir": settings.VAR_DIR, "portal_host": settings.OWT_PORTAL_HOST},
    )


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask every site for /favicon.ico: send them to the icon instead of a logged 404."""
    return HttpResponsePermanentRedirect(static("owt/favicon.svg"))
