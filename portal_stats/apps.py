from django.apps import AppConfig


class PortalStatsConfig(AppConfig):
    name = "portal_stats"
    default_auto_field = "django.db.models.BigAutoField"
