from django.apps import AppConfig


class OwtConfig(AppConfig):
    name = "owt"
    verbose_name = "Platform"
