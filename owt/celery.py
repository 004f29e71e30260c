"""The Celery app: tasks are discovered in each Django app's ``tasks.py``.

Queues: ``media`` for jobs that decode/encode or last as long as a recording,
``data`` for rollups, summaries and retention (see ``CELERY_TASK_ROUTES``).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")

app = Celery("owt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="owt.ping")
def ping(value: str = "pong") -> dict:
    """Round trip used by the health check and the tests: proves a worker consumes the broker."""
    import socket

    return {"value": value, "worker": socket.gethostname(), "pid": os.getpid()}
