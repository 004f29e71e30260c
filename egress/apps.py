from django.apps import AppConfig


class EgressConfig(AppConfig):
    name = "egress"
    default_auto_field = "django.db.models.BigAutoField"
