"""Celery jobs of the egress app (queue ``data``): webhook deliveries and queued-task timeouts.
The recording itself is a media job (``streamengine.tasks.run_media_job``, ``egress.jobs``)."""

from __future__ import annotations

import httpx
from celery import shared_task
from django.conf import settings

from egress import services


def _post(url: str, body: bytes, headers: dict) -> int:
    return httpx.post(url, content=body, headers=headers, timeout=settings.EGRESS_WEBHOOK_TIMEOUT_SECONDS).status_code


@shared_task(name="egress.tasks.deliver_webhook", bind=True, ignore_result=True, max_retries=None)
def deliver_webhook(self, delivery_id: int) -> None:
    """POST one state change; on failure again after 15 s, 30 s, 60 s … (at most 300 s) until
    ``EGRESS_WEBHOOK_ATTEMPTS`` attempts, then the delivery is marked failed."""
    if not services.delivery_attempt(delivery_id=delivery_id, post=_post):
        backoff = settings.EGRESS_WEBHOOK_BACKOFF_SECONDS * 2**self.request.retries
        raise self.retry(countdown=min(backoff, 300))


@shared_task(name="egress.tasks.time_out_queued", ignore_result=True)
def time_out_queued() -> list[str]:
    """Every 5 s (beat): tasks no media worker took in time end TIMEOUT."""
    return services.tasks_time_out()
