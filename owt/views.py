"""Platform-level endpoints."""

from __future__ import annotations

import asyncio
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from owt.celery import app as celery_app


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


class HealthView(APIView):
    """Reachability of the database, the Celery broker and the channel layer."""

    @extend_schema(
        responses={
            200: inline_serializer("Health", {"ok": serializers.BooleanField(), "checks": serializers.DictField()}),
            503: inline_serializer(
                "HealthFailed", {"ok": serializers.BooleanField(), "checks": serializers.DictField()}
            ),
        }
    )
    def get(self, request: Request) -> Response:
        results = {}
        for name, check in CHECKS.items():
            try:
                results[name] = check()
            except Exception as exc:  # a health check reports every failure, whatever its type
                results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        ok = all(result["ok"] for result in results.values())
        return Response({"ok": ok, "checks": results}, status=200 if ok else 503)
