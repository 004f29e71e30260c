"""Celery tasks of the metrics app (queue ``data``): each calls one service.

Tasks import the services, never the other way round: a call that ends is announced by the
``metrics.signals.call_ended`` signal, which this module answers by queueing its summary
(connected in ``MetricsConfig.ready``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from django.core.cache import cache

from metrics import summary
from metrics.services import connections, ingestion

logger = logging.getLogger(__name__)
SUMMARY_QUEUE_SECONDS = 5


@shared_task(name="metrics.tasks.summary_build", ignore_result=True)
def summary_build(conference_id: str) -> dict:
    """Build (or rebuild) a conference summary: on call end and on demand from /graphs."""
    return summary.summary_refresh(conference_id=conference_id)


@shared_task(name="metrics.tasks.stats_purge_expired", ignore_result=True)
def stats_purge_expired() -> int:
    """Delete raw stats older than ``METRICS_STATS_RETENTION_DAYS`` (summaries are kept)."""
    return ingestion.stats_purge_expired()


@shared_task(name="metrics.tasks.conferences_close_stale", ignore_result=True)
def conferences_close_stale() -> int:
    """Close calls whose SDKs went silent ``METRICS_CONFERENCE_TIMEOUT_HOURS`` ago, at their last event."""
    return connections.conferences_close_stale()


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


def on_call_ended(sender: object, *, conference_id: Any, **kwargs: object) -> None:
    summary_queue(conference_id=conference_id)
