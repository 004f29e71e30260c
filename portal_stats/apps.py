from django.apps import AppConfig


class PortalStatsConfig(AppConfig):
    name = "portal_stats"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # The aggregator is the beat schedule's job, not the request path's.
        schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
        if schedule is not None:
            schedule.setdefault(
                "portal-stats-aggregate-minutes",
                {"task": "portal_stats.tasks.aggregate_minutes", "schedule": 60.0, "options": {"expires": 55}},
            )
            schedule.setdefault(
                "portal-stats-purge-expired", {"task": "portal_stats.tasks.purge_expired", "schedule": 3600.0}
            )
