from django.apps import AppConfig


class ConferenceConfig(AppConfig):
    name = "conference"
    verbose_name = "Conference (OWT rooms and services)"
    default_auto_field = "django.db.models.BigAutoField"
