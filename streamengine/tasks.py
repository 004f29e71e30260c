"""Celery jobs of the stream engine (queue ``data``)."""

from celery import shared_task

from streamengine import services


@shared_task(name="streamengine.tasks.purge_expired_tokens", ignore_result=True)
def purge_expired_tokens() -> int:
    """Hourly: delete room tokens past their lifetime (a token never consumed stays otherwise)."""
    return services.token_purge_expired()
