"""Viblast portal stats: batched viewer-report ingestion rate, aggregation, 1-week time-series latency.

Runs against a throwaway test database created from the configured one (SQLite file by default;
``DATABASE_URL=postgres://...`` for PostgreSQL) and dropped afterwards.

    python -m bench portal_stats                       # short default run
    python -m bench portal_stats --batches 200 --batch-size 2000 --queries 500

Ingestion is measured three ways with the same pre-encoded JSON batches: real HTTP to a daphne
subprocess on loopback (one keep-alive connection, as a tracker would post), the whole Django stack
in-process (middleware, DRF JSON parsing, view, validation, one COPY / executemany per batch), and
the service alone.
The query part writes a week of minute buckets directly (10,000 concurrent viewers on every
minute) and times ``GET .../<week>/full.count/clients/<uuid>``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import time

from owt.localserver import portal_env, running_portal

TARGET_REPORTS_PER_S = 20_000
TARGET_P99_MS = 50.0
BROWSERS_UA = [
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36", 60),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", 15),
    ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", 15),
    ("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", 5),
    ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 OPR/106.0", 5),
]


def _setup_database() -> tuple[object, str]:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    if connection.vendor == "sqlite":
        # A real file (not the in-memory test default) so timings include the disk like production.
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
            settings.VAR_DIR / "bench_portal_stats.sqlite3"
        )
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return connection, old_name


def _make_reports(count: int, streams: list[tuple[int, list[int]]], viewers: int, rng: random.Random) -> list[dict]:
    uas = [ua for ua, _ in BROWSERS_UA]
    weights = [w for _, w in BROWSERS_UA]
    reports = []
    for _ in range(count):
        viewer = rng.randrange(viewers)
        stream_id, bitrates = streams[viewer % len(streams)]
        webrtc = viewer % 5 != 0
        swarm = rng.randrange(0, 1_000_000) if webrtc else 0
        reports.append(
            {
                "session": f"viewer-{viewer}",
                "stream": stream_id,
                "bitrate": bitrates[viewer % len(bitrates)],
                "browser": rng.choices(uas, weights)[0],
                "webrtc": webrtc,
                "down_cdn": rng.randrange(100_000, 1_500_000),
                "down_swarm": swarm,
                "up_swarm": swarm // 2,
            }
        )
    return reports


def _rate_row(case: str, count: int, elapsed: float, *, target: bool = False) -> dict:
    rate = count / elapsed
    return {
        "case": case,
        "count": count,
        "seconds": elapsed,
        "rate_per_s": rate,
        "target": f">= {TARGET_REPORTS_PER_S:,}/s" if target else "",
        "ratio": rate / TARGET_REPORTS_PER_S if target else "",
    }


def _database_url() -> str:
    """The URL of the (test) database this process uses, for a server subprocess."""
    from django.db import connection

    conf = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{conf['NAME']}"
    auth = conf["USER"] + (f":{conf['PASSWORD']}" if conf["PASSWORD"] else "")
    return f"postgres://{auth}@{conf['HOST'] or '127.0.0.1'}:{conf['PORT'] or 5432}/{conf['NAME']}"


def _post_through_daphne(bodies: list[bytes], write_key: str) -> float:
    """Start daphne on a free loopback port against the same database and post every body over one
    keep-alive connection; returns the seconds spent posting."""
    import http.client

    env = portal_env(DATABASE_URL=_database_url())
    with running_portal(env, migrate=False) as portal:
        connection = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {write_key}"}
        connection.request("POST", "/portal/tracker-api/reports/", bodies[0], headers)  # warm-up
        connection.getresponse().read()
        started = time.perf_counter()
        for body in bodies:
            connection.request("POST", "/portal/tracker-api/reports/", body, headers)
            response = connection.getresponse()
            payload = response.read()
            assert response.status == 202, payload
        elapsed = time.perf_counter() - started
        connection.close()
        return elapsed


def bench_ingest(
    args: argparse.Namespace, client, streams: list[tuple[int, list[int]]], rng: random.Random
) -> list[dict]:
    from django.test import Client as HttpClient

    from portal_stats import services
    from portal_stats.models import ViewerReport

    # Posted as the client's tracker: the key check (one lookup per batch) is part of the cost.
    write_key = services.client_key_issue(client=client, kind="write")
    http = HttpClient(headers={"Authorization": f"Bearer {write_key}"})
    bodies = [
        json.dumps({"reports": _make_reports(args.batch_size, streams, args.viewers, rng)}).encode()
        for _ in range(args.batches)
    ]
    count = args.batches * args.batch_size
    rows = []
    if not args.no_server:
        elapsed = _post_through_daphne(bodies, write_key)
        rows.append(_rate_row(f"POST via daphne, loopback ({args.batch_size}/batch)", count, elapsed, target=True))

    warm = http.post("/portal/tracker-api/reports/", bodies[0], content_type="application/json")
    assert warm.status_code == 202, warm.content
    started = time.perf_counter()
    for body in bodies:
        response = http.post("/portal/tracker-api/reports/", body, content_type="application/json")
        assert response.status_code == 202, response.content
    rows.append(_rate_row("POST in-process Django stack", count, time.perf_counter() - started, target=True))

    decoded = [json.loads(body)["reports"] for body in bodies]
    started = time.perf_counter()
    for reports in decoded:
        services.reports_ingest(reports=reports, only_client=client.id)
    rows.append(_rate_row("service only (no HTTP/JSON)", count, time.perf_counter() - started))

    total = ViewerReport.objects.count()
    started = time.perf_counter()
    now = time.time()
    services.stats_aggregate(start=int(now) - 300, end=int(now) + 60)
    rows.append(_rate_row("aggregate all raw reports (3 levels + rollups)", total, time.perf_counter() - started))
    return rows


def _write_week(client_id: int, streams: list[tuple[int, list[int]]], quality_ids: dict, viewers: int, end: int) -> int:
    """A week of minute buckets for the client, each stream and each quality, in bulk."""
    from django.db import connection

    from portal_stats.models import StatsBucket

    table = StatsBucket._meta.db_table
    columns = (
        "step, client_id, stream_id, quality_id, ts, samples, viewers, webrtc_viewers, chrome_viewers, firefox_viewers, "
        "ie_viewers, safari_viewers, opera_viewers, edge_viewers, other_viewers, down_cdn, down_swarm, up_swarm, "
        "webrtc_down_cdn, webrtc_down_swarm, webrtc_up_swarm"
    )
    keys = [(0, 0, viewers)]
    per_stream = viewers // len(streams)
    for stream_id, bitrates in streams:
        keys.append((stream_id, 0, per_stream))
        keys += [(stream_id, quality_ids[(stream_id, b)], per_stream // len(bitrates)) for b in bitrates]
    rng = random.Random(7)
    start = end - 7 * 86400
    written = 0
    with connection.cursor() as cursor:
        for stream_id, quality_id, base in keys:
            rows = []
            for ts in range(start, end + 60, 60):
                n = base + rng.randrange(-base // 50 - 1, base // 50 + 1)
                w = n * 4 // 5
                cdn, swarm = n * 3_000_000, w * 1_000_000
                rows.append(
                    (
                        60,
                        client_id,
                        stream_id,
                        quality_id,
                        ts,
                        1,
                        n,
                        w,
                        n * 0.6,
                        n * 0.15,
                        n * 0.05,
                        n * 0.15,
                        n * 0.05,
                        0,
                        0,
                    )
                    + (cdn, swarm, swarm, cdn - (n - w) * 3_000_000, swarm, swarm)
                )
            placeholders = ", ".join(["%s"] * 21)
            if connection.vendor == "postgresql":
                from psycopg2.extras import execute_values

                execute_values(cursor.cursor, f"INSERT INTO {table} ({columns}) VALUES %s", rows, page_size=2000)
            else:
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
            written += len(rows)
    return written


def bench_query(args: argparse.Namespace, client, streams, quality_ids) -> list[dict]:
    from django.test import Client as HttpClient

    from bench.report import percentile
    from portal_stats import services

    end = int(time.time()) // 60 * 60
    written = _write_week(client.id, streams, quality_ids, args.viewers, end)
    http = HttpClient(headers={"Authorization": f"Bearer {services.client_key_issue(client=client, kind='read')}"})
    url = f"/portal/api/stats/time/{end - 7 * 86400}-{end}/full.count/clients/{client.uuid}"
    first = http.get(url)
    assert first.status_code == 200 and first["X-Stats-Resolution"] == "minute", first.content
    points = first.json()
    assert len(points) == 10081 and points[0][0] is not None
    rows = []
    # Start from a clean heap: the bulk write above leaves garbage a long-running server would not carry.
    gc.collect()
    for label, path in (("client", url), ("stream", f"{url}/streams/{streams[0][0]}")):
        timings, cpu = [], []
        for _ in range(args.queries):
            started, cpu_started = time.perf_counter(), time.process_time()
            response = http.get(path)
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
            assert response.status_code == 200
        rows.append(
            {
                "case": f"1-week full.count, {label} level ({len(points):,} points)",
                "count": args.queries,
                "p50_ms": percentile(timings, 0.5),
                "p99_ms": percentile(timings, 0.99),
                "cpu_p99_ms": percentile(cpu, 0.99),
                "target": f"p99 < {TARGET_P99_MS:.0f} ms",
                "ratio": TARGET_P99_MS / percentile(timings, 0.99),
            }
        )
    rows[0]["buckets_in_table"] = written
    return rows


def _register(uuid: str, count: int) -> tuple[object, list[tuple[int, list[int]]], dict]:
    """A client with ``count`` streams of three renditions each, registered through the services."""
    from portal_stats import services

    client = services.client_get_or_insert(uuid=uuid, name=uuid)[0]
    streams, quality_ids = [], {}
    bitrates = [800, 1600, 3000]
    for n in range(count):
        stream = services.stream_get_or_insert(client_id=client.id, cdn_stream=f"https://cdn.example/{uuid}/{n}.m3u8")[
            0
        ]
        for bitrate in bitrates:
            quality_ids[(stream.id, bitrate)] = services.quality_get_or_insert(stream_id=stream.id, bitrate=bitrate)[
                0
            ].id
        streams.append((stream.id, bitrates))
    return client, streams, quality_ids


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench portal_stats", description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches posted (default 40)")
    parser.add_argument("--batch-size", type=int, default=1000, help="reports per batch (default 1000)")
    parser.add_argument("--viewers", type=int, default=10_000, help="concurrent viewers (default 10,000)")
    parser.add_argument("--streams", type=int, default=4, help="streams of the client (default 4)")
    parser.add_argument("--no-server", action="store_true", help="skip the daphne (real HTTP) ingestion case")
    parser.add_argument("--queries", type=int, default=100, help="time-series requests per case (default 100)")
    args = parser.parse_args(argv)

    connection, old_name = _setup_database()
    try:
        rng = random.Random(42)
        client, streams, _ = _register("bench-ingest", args.streams)
        ingest_rows = bench_ingest(args, client, streams, rng)
        query_rows = bench_query(args, *_register("bench-week", args.streams))
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    from bench.report import emit

    notes = {
        "database": connection.vendor,
        "viewers": args.viewers,
        # The machine is shared: wall-clock tails include waiting for a CPU; cpu_p99_ms does not.
        "load_average_1m": os.getloadavg()[0],
    }
    emit("portal_stats_ingest", ingest_rows, notes=notes)
    emit("portal_stats_query", query_rows, notes=notes)
    return {"ingest": ingest_rows, "query": query_rows}
