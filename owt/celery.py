"""The Celery app: tasks are discovered in each Django app's ``tasks.py``.

Queues: ``media`` for jobs that decode/encode or last as long as a recording,
``data`` for rollups, summaries and retention (see ``CELERY_TASK_ROUTES``).
"""

import os
from pathlib import Path

from celery import Celery, signals

from owt import broker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
broker.install()  # the embedded broker writes its messages atomically

app = Celery("owt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

BROKER_FOLDERS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


@app.on_after_configure.connect
def make_embedded_folders(sender: Celery, source, **kwargs) -> None:
    """The embedded broker and result backend are folders: make them when Celery is configured
    in a process that uses it (worker, beat, a portal sending a task), not at settings import."""
    if str(source.broker_url).startswith("filesystem://"):
        options = source.broker_transport_options or {}
        for folder in {options[key] for key in BROKER_FOLDERS if options.get(key)}:
            Path(folder).mkdir(parents=True, exist_ok=True)
    backend = source.result_backend
    if isinstance(backend, str) and backend.startswith("file://"):
        Path(backend.removeprefix("file://")).mkdir(parents=True, exist_ok=True)


@signals.worker_init.connect
@signals.beat_init.connect
def check_secrets(**kwargs) -> None:
    """Celery runs no system checks: a production worker or beat stops here on a bad key."""
    from django.core.exceptions import ImproperlyConfigured

    from owt.checks import refuse_insecure_start

    try:
        refuse_insecure_start()
    except ImproperlyConfigured as exc:
        raise SystemExit(str(exc)) from exc  # Celery logs and ignores a receiver's Exception


@app.task(name="owt.ping")
def ping(value: str = "pong") -> dict:
    """Round trip used by the health check and the tests: proves a worker consumes the broker."""
    import socket

    return {"value": value, "worker": socket.gethostname(), "pid": os.getpid()}
