"""What the egress app does when the engine's media jobs change."""

from __future__ import annotations

from django.dispatch import receiver

from streamengine.jobs.services import job_state_changed

EGRESS_KINDS = ("egress-room", "egress-web")


@receiver(job_state_changed)
def follow_job(sender: object, *, job_id: str, kind: str, **kwargs: object) -> None:
    if kind in EGRESS_KINDS:
        from egress.services import task_follow_job  # the services import the media stack

        task_follow_job(job_id=job_id)
