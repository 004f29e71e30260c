from django.apps import AppConfig


class OwtConfig(AppConfig):
    name = "owt"
    verbose_name = "Platform"

    def ready(self) -> None:
        from owt import checks  # noqa: F401  (registers the secret checks)
