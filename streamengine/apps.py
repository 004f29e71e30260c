from django.apps import AppConfig


class StreamengineConfig(AppConfig):
    name = "streamengine"
    default_auto_field = "django.db.models.BigAutoField"
