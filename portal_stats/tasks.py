"""Celery jobs (queue ``data``): the per-minute aggregator and retention."""

from celery import shared_task

from portal_stats import services


@shared_task(name="portal_stats.tasks.aggregate_minutes", ignore_result=True)
def aggregate_minutes() -> list[int]:
    """Every minute: fold closed minutes into buckets and refresh their hour/day rollups."""
    return list(services.stats_aggregate_pending())


@shared_task(name="portal_stats.tasks.purge_expired", ignore_result=True)
def purge_expired() -> dict[str, int]:
    """Hourly: retention for raw reports and buckets."""
    return services.stats_purge()
