"""Celery tasks of the metrics app (queue ``data``): each calls one service.

Tasks import the services, never the other way round at module level: the one service that
enqueues a task (:func:`metrics.summary.summary_queue`) imports it when it runs.
"""

from __future__ import annotations

from celery import shared_task

from metrics import summary
from metrics.services import connections, ingestion


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
