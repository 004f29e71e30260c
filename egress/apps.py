from django.apps import AppConfig


class EgressConfig(AppConfig):
    name = "egress"
    verbose_name = "Egress"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A task's status follows its media job, in whichever process changes the job.
        from egress import receivers  # noqa: F401
