"""Celery round trip: latency of a tiny task through the configured broker and a real worker.

Starts one worker process (solo pool), sends N ``owt.ping`` tasks one at a time and then N in a
burst, and reports p50/p99 latency and burst throughput. Compare brokers by running it with
different ``CELERY_BROKER_URL`` values (filesystem default, Redis, RabbitMQ).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import django


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench celery_round_trip")
    parser.add_argument("-n", "--tasks", type=int, default=200)
    args = parser.parse_args(argv)

    django.setup()
    from django.conf import settings

    from bench.report import emit, percentile
    from owt.celery import app, ping

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "owt", "worker", "-Q", "data", "-P", "solo", "-c", "1"]
        + ["-n", f"bench-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "ERROR"],
        cwd=settings.BASE_DIR,
    )
    try:
        ping.delay("warm-up").get(timeout=60)
        latencies = []
        for index in range(args.tasks):
            started = time.perf_counter()
            ping.delay(str(index)).get(timeout=30, interval=0.005)
            latencies.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        results = [ping.delay(str(index)) for index in range(args.tasks)]
        for result in results:
            result.get(timeout=60, interval=0.005)
        burst_seconds = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(timeout=30)

    row = {
        "broker": app.connection_for_write().transport_cls,
        "tasks": args.tasks,
        "p50 ms": percentile(latencies, 0.50),
        "p99 ms": percentile(latencies, 0.99),
        "burst tasks/s": args.tasks / burst_seconds,
    }
    emit("celery_round_trip", [row])
    return row
