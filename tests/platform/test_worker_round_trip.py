"""A task sent from the portal side is executed by a real Celery worker process through the broker.

On the embedded defaults the broker is kombu's filesystem transport; in CI the same test
runs against Redis and RabbitMQ (``CELERY_BROKER_URL``).
"""

import fnmatch
import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

from owt.celery import app as celery_app
from owt.celery import ping

pytestmark = pytest.mark.worker


@pytest.fixture(scope="module")
def worker():
    command = [sys.executable, "-m", "celery", "-A", "owt", "worker", "-Q", "data,media", "-c", "1", "-P", "solo"]
    command += ["-n", f"test-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
    process = subprocess.Popen(
        command, cwd=settings.BASE_DIR, env={**os.environ, "DJANGO_SETTINGS_MODULE": "owt.settings"}
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def test_ping_round_trip_through_real_worker(worker):
    started = time.monotonic()
    result = ping.delay("hello")
    reply = result.get(timeout=60)
    assert reply["value"] == "hello"
    # Executed in the worker process, not eagerly in this one.
    assert reply["pid"] == worker.pid
    assert reply["pid"] != os.getpid()
    assert time.monotonic() - started < 60


def registered_tasks() -> list[str]:
    celery_app.loader.import_default_modules()  # what a worker imports at start (autodiscovery)
    return sorted(name for name in celery_app.tasks if not name.startswith("celery."))


def test_tasks_are_routed_by_queue():
    routes = settings.CELERY_TASK_ROUTES
    assert routes["metrics.tasks.*"]["queue"] == "data"
    assert routes[ping.name]["queue"] == "data"
    tasks = registered_tasks()
    # A route for a module that does not exist hides that its jobs would land on the default queue.
    for pattern in routes:
        assert fnmatch.filter(tasks, pattern), f"route {pattern!r} names no task"
    for name in tasks:
        queue = celery_app.amqp.router.route({}, name)["queue"].name
        assert queue == next(route["queue"] for pattern, route in routes.items() if fnmatch.fnmatch(name, pattern))
        assert queue in {"data", "media"}
    assert celery_app.amqp.router.route({}, "streamengine.tasks.purge_expired_tokens")["queue"].name == "data"


def test_beat_runs_registered_tasks():
    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks = registered_tasks()
    assert {entry["task"] for entry in schedule.values()} <= set(tasks)
    assert schedule["streamengine-purge-expired-tokens"]["task"] == "streamengine.tasks.purge_expired_tokens"
