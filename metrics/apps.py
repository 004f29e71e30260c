from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # Raw stats retention and stale-call cleanup run hourly on the data queue.
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "metrics-stats-retention",
            {"task": "metrics.tasks.stats_purge_expired", "schedule": 3600.0, "options": {"queue": "data"}},
        )
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "metrics-close-stale-conferences",
            {"task": "metrics.tasks.conferences_close_stale", "schedule": 3600.0, "options": {"queue": "data"}},
        )
