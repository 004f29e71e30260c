"""Celery tasks of the metrics app (queue ``data``)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import Max
from django.utils import timezone

from metrics.models import Conference, GenericEvent
from metrics.services.connections import conference_stop

logger = logging.getLogger(__name__)
SUMMARY_QUEUE_SECONDS = 5


@shared_task(name="metrics.tasks.summary_build", ignore_result=True)
def summary_build(conference_id: str) -> dict:
    """Build (or rebuild) a conference summary: on call end and on demand from /graphs."""
    from metrics.summary import summary_build as build

    if not Conference.objects.filter(pk=conference_id).exists():
        return {"conference": conference_id, "built": False}
    summary = build(conference_id=conference_id)
    return {"conference": conference_id, "built": True, "connections": len(summary.data.get("connections", []))}


@shared_task(name="metrics.tasks.stats_purge_expired", ignore_result=True)
def stats_purge_expired() -> int:
    """Delete raw stats older than ``METRICS_STATS_RETENTION_DAYS`` (summaries are kept)."""
    cutoff = timezone.now() - timedelta(days=settings.METRICS_STATS_RETENTION_DAYS)
    deleted, _ = GenericEvent.objects.filter(category=GenericEvent.Category.STATS, created_at__lt=cutoff).delete()
    return deleted


def summary_queue(*, conference_id: Any) -> None:
    """Queue a summary build; a broker outage must not fail the SDK request that ended the call
    (the dashboard's /graphs queues it again on demand). A dashboard polling an ongoing call
    queues at most one build per ``SUMMARY_QUEUE_SECONDS``."""
    if not cache.add(f"metrics:summary-queued:{conference_id}", 1, SUMMARY_QUEUE_SECONDS):
        return
    try:
        summary_build.delay(str(conference_id))
    except Exception:  # noqa: BLE001 - logged, recovered on demand
        logger.exception("could not queue the summary of conference %s", conference_id)


@shared_task(name="metrics.tasks.conferences_close_stale", ignore_result=True)
def conferences_close_stale() -> int:
    """Close calls whose SDKs went silent (tab killed, network gone) ``METRICS_CONFERENCE_TIMEOUT_HOURS`` ago.

    They end at their last event, so durations do not count the silence.
    """
    cutoff = timezone.now() - timedelta(hours=settings.METRICS_CONFERENCE_TIMEOUT_HOURS)
    stale = (
        Conference.objects.filter(ongoing=True)
        .annotate(last_event=Max("events__created_at"))
        .filter(last_event__lt=cutoff)
        .values_list("pk", "last_event")
    )
    closed = 0
    for conference_id, last_event in stale:
        conference_stop(conference_id=conference_id, now=last_event)
        closed += 1
    return closed
