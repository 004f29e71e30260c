from django.apps import AppConfig


class StreamengineConfig(AppConfig):
    name = "streamengine"
    verbose_name = "Stream engine (live state, room tokens, media jobs)"
    default_auto_field = "django.db.models.BigAutoField"
