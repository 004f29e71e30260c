"""Sustained POST /metrics/v1/stats ingestion: group commit vs one INSERT per request.

Two modes of the same app: ``bulk`` (the ASGI fast path and group commit) and ``direct``
(``METRICS_STATS_INGEST=direct``: the Django view, one INSERT and commit per request,
session and connection read from the database every time). Two transports:
``--transport daphne`` (default) starts a real daphne server on a free port per mode and
posts over keep-alive HTTP/1.1 with a minimal asyncio client; ``--transport inprocess``
calls the ASGI application in this process (no HTTP parsing on either side), which shows
the ingestion path itself when the HTTP layer is the ceiling on a small machine. It opens
``--connections`` SDK connections through the real initialize → sessions → addConnection
routes, then keeps ``--concurrency`` clients posting the 4-track stats payload of
``metrics.testing.stats_payload`` for ``--seconds``. Rows are counted afterwards: every
200 must be one stored row and nothing else may be there.

Database: a fresh SQLite file in a temporary folder unless ``DATABASE_URL`` is set (then
that database is migrated and used). Usage::

    python -m bench metrics_ingest                         # short run (5 s per mode), daphne
    python -m bench metrics_ingest --transport inprocess
    python -m bench metrics_ingest --seconds 30 --concurrency 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import emit, percentile


class HttpTransport:
    """Keep-alive HTTP/1.1 over asyncio streams: far cheaper per request than a full client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def post(self, path: str, body: bytes, lane: int = 0) -> tuple[int, bytes]:
        if lane not in self.streams:
            self.streams[lane] = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams[lane]
        writer.write(
            b"POST /metrics/v1/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nAccept: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
        )
        status = int((await reader.readline()).split()[1])
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    async def close(self) -> None:
        for _, writer in self.streams.values():
            writer.close()
        self.streams.clear()


class InProcessTransport:
    """Calls the project's ASGI application directly (same code path as under daphne)."""

    def __init__(self) -> None:
        from owt.asgi import application

        self.application = application

    async def post(self, path: str, body: bytes, lane: int = 0) -> tuple[int, bytes]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
            "path": f"/metrics/v1/{path}", "raw_path": f"/metrics/v1/{path}".encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 40000 + lane), "server": ("127.0.0.1", 80),
        }  # fmt: skip
        sent = False
        answer: dict[str, Any] = {"status": 0, "body": b""}

        async def receive() -> dict:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)  # no disconnect while the app is working
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body":
                answer["body"] += message.get("body", b"")

        await self.application(scope, receive, send)
        return answer["status"], answer["body"]

    async def close(self) -> None:
        return None


def setup_app() -> str:
    """An organization and app in the benchmark database; returns the api key."""
    import django

    django.setup()
    from django.core.management import call_command

    from metrics.models import App, Organization

    call_command("migrate", verbosity=0)
    organization = Organization.objects.create(name="bench")
    return App.objects.create(organization=organization, name="bench").api_key


def count_rows(connection_ids: list[str]) -> int:
    from django.db import connections

    from metrics.models import GenericEvent

    connections.close_all()
    return GenericEvent.objects.filter(category="S", connection_id__in=connection_ids).count()


async def post_json(transport: Any, path: str, body: dict) -> Any:
    status, raw = await transport.post(path, json.dumps(body).encode())
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {raw[:300]!r}")
    return json.loads(raw)


async def open_connections(transport: Any, api_key: str, count: int, tag: str) -> list[tuple[str, dict]]:
    """Real SDK handshakes: one participant (session token) and one connection each."""
    result = []
    for index in range(count):
        init = await post_json(
            transport,
            "initialize",
            {"apiKey": api_key, "conferenceId": f"{tag}-room-{index // 2}", "userId": f"{tag}-user-{index}"},
        )
        session = await post_json(transport, "sessions", {"token": init["token"]})
        ids = await post_json(
            transport,
            "connection",
            {"token": session["token"], "eventName": "addConnection", "peerId": f"{tag}-peer-{index}"},
        )
        result.append((session["token"], ids))
    return result


async def load(transport: Any, sdk: list[tuple[str, dict]], concurrency: int, seconds: float) -> dict:
    from metrics.testing import stats_payload

    samples = [stats_payload(i) for i in range(20)]
    # Bodies are encoded up front so the client spends its CPU on sending.
    bodies = [
        [
            json.dumps(
                {
                    "token": token,
                    "peerId": ids["peer_id"],
                    "connectionId": ids["connection_id"],
                    "timeTaken": 3,
                    "data": data,
                }
            ).encode()
            for data in samples
        ]
        for token, ids in sdk
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def worker(lane: int) -> None:
        mine = bodies[lane % len(bodies)]
        sample = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                status, _ = await transport.post("stats", mine[sample % len(mine)], lane)
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                status = 0
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
            sample += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(lane) for lane in range(concurrency)))
    return {
        "latencies": latencies,
        "statuses": statuses,
        "elapsed": time.perf_counter() - started,
        "body_bytes": len(bodies[0][5]),
    }


async def measure(transport: Any, api_key: str, mode: str, args: argparse.Namespace) -> tuple[list, dict, int]:
    try:
        sdk = await open_connections(transport, api_key, args.connections, mode)
        await load(transport, sdk, args.concurrency, 1.0)  # warm-up, not counted
        from asgiref.sync import sync_to_async

        connection_ids = [ids["connection_id"] for _, ids in sdk]
        warm_rows = await sync_to_async(count_rows)(connection_ids)
        result = await load(transport, sdk, args.concurrency, args.seconds)
        return connection_ids, result, warm_rows
    finally:
        await transport.close()


def run_mode(mode: str, env: dict, api_key: str, args: argparse.Namespace, workdir: Path) -> dict:
    if args.transport == "daphne":
        server_env = {**env, "METRICS_STATS_INGEST": mode}
        # Imported here: importing owt reads the settings, which must see main()'s OWT_VAR_DIR.
        from owt.localserver import running_portal

        with running_portal(server_env, migrate=False, log_path=workdir / f"daphne-{mode}.log") as portal:
            connection_ids, result, warm_rows = asyncio.run(measure(HttpTransport(portal.port), api_key, mode, args))
    else:
        from django.conf import settings

        settings.METRICS_STATS_INGEST = mode
        connection_ids, result, warm_rows = asyncio.run(measure(InProcessTransport(), api_key, mode, args))
    ok = result["statuses"].get(200, 0)
    rows = count_rows(connection_ids) - warm_rows
    latencies = result["latencies"]
    return {
        "mode": mode,
        "requests": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok,
        "req_per_s": ok / result["elapsed"],
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "rows": rows,
        "lost": ok - rows,
        "body_bytes": result["body_bytes"],
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench metrics_ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per mode (default 5)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent clients (default 32)")
    parser.add_argument("--connections", type=int, default=16, help="SDK connections the clients post for (default 16)")
    parser.add_argument("--modes", default="direct,bulk", help="comma-separated: direct (baseline), bulk")
    parser.add_argument("--transport", choices=["daphne", "inprocess"], default="daphne")
    args = parser.parse_args(argv)

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "owt.settings", "LOG_LEVEL": "WARNING"}
    os.environ["LOG_LEVEL"] = "WARNING"
    with tempfile.TemporaryDirectory(prefix="metrics-bench-") as temp:
        if not env.get("DATABASE_URL"):
            env["OWT_VAR_DIR"] = os.environ["OWT_VAR_DIR"] = temp
        api_key = setup_app()
        rows = [run_mode(mode, env, api_key, args, Path(temp)) for mode in args.modes.split(",")]
    by_mode = {row["mode"]: row for row in rows}
    notes = {
        "transport": (
            "daphne subprocess on 127.0.0.1, keep-alive HTTP/1.1, asyncio client"
            if args.transport == "daphne"
            else "in-process ASGI calls of owt.asgi.application (no HTTP layer)"
        ),
        "database": "DATABASE_URL" if os.environ.get("DATABASE_URL") else "fresh SQLite file (WAL)",
        "payload": "metrics.testing.stats_payload: audio+video inbound/outbound, candidate pair, remote reports",
        "concurrency": args.concurrency,
        "seconds_per_mode": args.seconds,
    }
    if "direct" in by_mode and "bulk" in by_mode and by_mode["direct"]["req_per_s"]:
        notes["speedup_bulk_vs_direct"] = by_mode["bulk"]["req_per_s"] / by_mode["direct"]["req_per_s"]
    notes["no_loss"] = all(row["lost"] == 0 for row in rows)
    emit("metrics_ingest", rows, notes=notes)
