from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "peermetrics (call quality)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from metrics import signals, tasks

        signals.call_ended.connect(tasks.on_call_ended, dispatch_uid="metrics.summary_queue")
