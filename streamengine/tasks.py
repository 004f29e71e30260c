"""Celery jobs of the stream engine: media jobs (queue ``media``) and housekeeping (queue ``data``)."""

from importlib import import_module

from celery import shared_task
from django.conf import settings

from streamengine import services


@shared_task(name="streamengine.tasks.purge_expired_tokens", ignore_result=True)
def purge_expired_tokens() -> int:
    """Hourly: delete room tokens past their lifetime (a token never consumed stays otherwise)."""
    return services.token_purge_expired()


# Acked on receipt (``acks_late=False``): a recording may outlive the broker's visibility
# timeout and must not be delivered again; the job's lease decides if it runs again.
@shared_task(
    name="streamengine.tasks.run_media_job",
    ignore_result=True,
    acks_late=False,
    reject_on_worker_lost=False,
    soft_time_limit=settings.MEDIA_JOB_MAX_SECONDS,
    time_limit=settings.MEDIA_JOB_MAX_SECONDS + 60,
)
def run_media_job(job_id: str) -> str:
    """Run one media job (recording, streaming-out, streaming-in…) to its end."""
    from streamengine.jobs import kinds  # noqa: F401  (registers the job kinds)
    from streamengine.jobs.runtime import run_job

    for module in settings.MEDIA_JOB_MODULES:  # the kinds of the apps above the engine
        import_module(module)

    return run_job(job_id)


@shared_task(name="streamengine.tasks.reap_media_jobs", ignore_result=True)
def reap_media_jobs() -> list[str]:
    """Every 2 s (beat): restart or fail the jobs of workers that stopped renewing their lease."""
    from streamengine.jobs.services import job_reap_expired

    return job_reap_expired()
