from django.apps import AppConfig


class PortalStatsConfig(AppConfig):
    name = "portal_stats"
    verbose_name = "Portal stats (Viblast P2P CDN)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from portal_stats import conf  # noqa: F401  (registers the settings check)
