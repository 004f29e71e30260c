"""The media jobs' state: every write to a ``MediaJob`` row (REST, admin, workers, the reaper).

A job runs at most once at a time, whatever the broker does: a worker *claims* it with one
conditional UPDATE (``pending`` → ``starting``, its name and a lease), renews the lease with
each heartbeat and loses it the moment the row says otherwise. The broker message only says
"look at job N"; it is acked on receipt, so a job longer than Redis' visibility timeout is
never redelivered, and a worker killed mid-job is found by its lapsed lease
(:func:`job_reap_expired`), not by the broker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.dispatch import Signal
from django.utils import timezone

from streamengine.exceptions import JobNotFound
from streamengine.models import MediaJob

logger = logging.getLogger(__name__)
State = MediaJob.State
HOLDING = (State.STARTING, State.RUNNING, State.STOPPING)
# A view's mixer: four 640x360 inputs into one 640x480 VP8 picture at 24 fps (bench mixer).
MIXING_JOB_COST = 1.0
# A SIP agent only registers and answers; its calls are jobs of their own (bench sip).
SIP_AGENT_JOB_COST = 0.01

# Sent (``job_id``, ``kind``) after a job's state changed, in whichever process changed it
# (REST, a worker, the reaper): the apps above the engine (egress) follow their jobs with
# it, since the engine never imports them.
job_state_changed = Signal()


def _changed(job_id: str, kind: str) -> None:
    transaction.on_commit(lambda: _announce_change(job_id, kind))


def _announce_change(job_id: str, kind: str) -> None:
    # A listener's failure is its own: the job's state is already written, and the engine's
    # caller (the reaper, a worker) goes on with the next job.
    for listener, outcome in job_state_changed.send_robust(sender=MediaJob, job_id=job_id, kind=kind):
        if isinstance(outcome, Exception):
            logger.error("media job %s: %r failed: %r", job_id, listener, outcome, exc_info=outcome)


def worker_name() -> str:
    """This process as a job holder: ``host:pid`` (the CPU budget is counted per host)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease() -> timezone.datetime:
    return timezone.now() + timedelta(seconds=settings.MEDIA_JOB_LEASE_SECONDS)


def _enqueue(job_id: str, countdown: float = 0) -> None:
    """Ask a media worker to run the job (after this transaction commits). While it is
    pending, its ``lease_until`` is when to ask again if no worker claimed it by then."""
    from streamengine.tasks import run_media_job

    resend = timezone.now() + timedelta(seconds=countdown + settings.MEDIA_JOB_PENDING_RESEND_SECONDS)
    MediaJob.objects.filter(id=job_id, state=State.PENDING).update(lease_until=resend)
    transaction.on_commit(lambda: run_media_job.apply_async((job_id,), countdown=countdown))


def job_create(*, domain_id: str | None, kind: str, spec: dict, cost: float) -> MediaJob:
    """A new ``pending`` job; a media worker is asked to run it once this commits. A job with
    no ``domain_id`` joins no room (an egress web page capture)."""
    job = MediaJob.objects.create(
        id=str(secrets.randbelow(10**18 - 10**17) + 10**17),  # OWT's random decimal ids
        kind=kind,
        domain_id=domain_id,
        spec=spec,
        cost=cost,
    )
    _enqueue(job.id)
    return job


def job_create_held(*, domain_id: str, kind: str, spec: dict, cost: float, worker: str) -> MediaJob:
    """A new job already held by ``worker`` (``starting``, its lease): one that can only run
    in that process (a SIP call answered by the process's SIP agent). No worker is asked."""
    job = MediaJob.objects.create(
        id=str(secrets.randbelow(10**18 - 10**17) + 10**17),
        kind=kind,
        domain_id=domain_id,
        spec=spec,
        cost=cost,
        state=State.STARTING,
        worker=worker,
        attempt=1,
        lease_until=_lease(),
        started_at=timezone.now(),
    )
    _changed(job.id, kind)
    return job


def sip_agent_wanted(domain_id: str, config: dict) -> dict | None:
    """The spec of the room's SIP agent (docs/sip.md), or None if it needs none: it has a SIP
    account (``sip.username``) or numbers of ``SIP_DIAL_IN_ROOMS`` lead to it. The spec
    fingerprints the settings, so a change restarts the agent with the new ones."""
    sip = config.get("sip") or {}
    numbers = sorted(user for user, room in settings.SIP_DIAL_IN_ROOMS.items() if room == domain_id)
    if not settings.SIP_AGENT_AUTOSTART or not (sip.get("username") or numbers):
        return None
    account = json.dumps([sip, numbers], sort_keys=True).encode()
    return {"numbers": numbers, "settings": hashlib.sha256(account).hexdigest()[:16]}


def sip_agent_sync(*, domain_id: str, config: dict) -> None:
    """Start, restart (settings changed) or stop the room's SIP agent to match its settings."""
    wanted = sip_agent_wanted(domain_id, config)
    for agent in jobs_live(domain_id=domain_id, kind="sip-agent"):
        if agent.spec == wanted:
            return
        job_stop(job_id=agent.id, reason="the room's SIP settings changed")
    if wanted is not None:
        job_create(domain_id=domain_id, kind="sip-agent", spec=wanted, cost=SIP_AGENT_JOB_COST)


def jobs_live(*, domain_id: str, kind: str) -> list[MediaJob]:
    """The domain's jobs of ``kind`` that are waiting or running (not stopping or ended)."""
    return list(
        MediaJob.objects.filter(
            domain_id=domain_id, kind=kind, state__in=(State.PENDING, State.STARTING, State.RUNNING)
        )
    )


def job_claim(*, job_id: str, worker: str) -> MediaJob | None:
    """Take a pending job for ``worker`` if this host's CPU budget allows; None if it is not ours to run.

    Over budget, the job stays pending and is offered again shortly (another worker with
    room may take it first): a full worker refuses work instead of dropping frames for all.
    """
    job = MediaJob.objects.filter(id=job_id, state=State.PENDING).first()
    if job is None:
        return None
    host = worker.rsplit(":", 1)[0]
    holding = (
        MediaJob.objects.filter(state__in=HOLDING, worker__startswith=f"{host}:").aggregate(total=Sum("cost"))["total"]
        or 0.0
    )
    if holding + job.cost > settings.MEDIA_JOB_CPU_BUDGET and holding > 0:
        MediaJob.objects.filter(id=job_id, state=State.PENDING).update(
            progress={**job.progress, "waiting": f"no CPU budget on {host} ({holding:.2f} cores held)"}
        )
        _changed(job_id, job.kind)  # still pending, now saying why
        _enqueue(job_id, countdown=settings.MEDIA_JOB_RETRY_SECONDS)
        return None
    claimed = MediaJob.objects.filter(id=job_id, state=State.PENDING).update(
        state=State.STARTING,
        worker=worker,
        attempt=job.attempt + 1,
        lease_until=_lease(),
        started_at=timezone.now(),
    )
    if not claimed:
        return None
    _changed(job_id, job.kind)
    return MediaJob.objects.get(id=job_id)


def _held(job_id: str, worker: str, attempt: int):
    return MediaJob.objects.filter(id=job_id, worker=worker, attempt=attempt, state__in=HOLDING)


def job_heartbeat(*, job_id: str, worker: str, attempt: int, progress: dict, running: bool) -> MediaJob | None:
    """Renew the lease and record progress; the row as it is now, or None if the job is no longer ours."""
    changes = {"lease_until": _lease(), "progress": progress}
    held = _held(job_id, worker, attempt)
    started = running and held.filter(state=State.STARTING).update(state=State.RUNNING)
    if not held.update(**changes):
        return None
    job = MediaJob.objects.filter(id=job_id).first()
    if started and job is not None:
        _changed(job_id, job.kind)
    return job


def job_end(*, job_id: str, worker: str, attempt: int, failed: str = "", result: dict | None = None) -> None:
    """The holder ends its job: ``finished`` (or ``failed`` with the reason)."""
    job = MediaJob.objects.filter(id=job_id).first()
    if job is None:
        return
    if _held(job_id, worker, attempt).update(
        state=State.FAILED if failed else State.FINISHED,
        reason=failed or job.reason,
        result={**job.result, **(result or {})},
        lease_until=None,
        ended_at=timezone.now(),
    ):
        _changed(job_id, job.kind)


def job_record_result(*, job_id: str, worker: str, attempt: int, result: dict) -> None:
    """What the job produced so far (a file's name, a stream id), visible while it runs."""
    with transaction.atomic():
        job = MediaJob.objects.select_for_update().filter(id=job_id, worker=worker, attempt=attempt).first()
        if job is not None:
            job.result = {**job.result, **result}
            job.save(update_fields=["result"])


def job_stop(
    *, job_id: str, domain_id: str | None = None, kind: str | None = None, reason: str = "stopped"
) -> MediaJob:
    """Stop a job (REST DELETE): a pending one ends at once, a running one within a heartbeat."""
    jobs = MediaJob.objects.filter(id=job_id)
    if domain_id is not None:
        jobs = jobs.filter(domain_id=domain_id)
    if kind is not None:
        jobs = jobs.filter(kind=kind)
    job = jobs.first()
    if job is None:
        raise JobNotFound()
    if jobs.filter(state=State.PENDING).update(
        state=State.FINISHED, reason=reason, ended_at=timezone.now()
    ) + jobs.filter(state__in=(State.STARTING, State.RUNNING)).update(state=State.STOPPING, reason=reason):
        _changed(job_id, job.kind)
    return MediaJob.objects.get(id=job_id)


def job_update_spec(*, job_id: str, spec: dict) -> MediaJob:
    """Change what a job does (PATCH): the holder sees the new spec at its next heartbeat."""
    with transaction.atomic():
        job = MediaJob.objects.select_for_update().filter(id=job_id).first()
        if job is None:
            raise JobNotFound()
        job.spec = spec
        job.save(update_fields=["spec"])
    return job


def job_reap_expired() -> list[str]:
    """Jobs whose holder stopped renewing its lease: offered again (``pending``) while attempts
    remain and nobody asked to stop them, else ``failed`` with the reason. Pending jobs whose
    message was lost (a worker died between receiving and claiming) are offered again too.
    Returns the ids it changed."""
    now = timezone.now()
    changed = []
    for job in MediaJob.objects.filter(state__in=HOLDING, lease_until__lt=now):
        lost = f"worker {job.worker} stopped renewing its lease (killed or lost)"
        if job.state != State.STOPPING and job.attempt < settings.MEDIA_JOB_MAX_ATTEMPTS:
            if MediaJob.objects.filter(id=job.id, worker=job.worker, attempt=job.attempt, state=job.state).update(
                state=State.PENDING,
                worker="",
                lease_until=None,
                progress={**job.progress, "last_error": f"{lost}; restarting (attempt {job.attempt + 1})"},
            ):
                _enqueue(job.id)
                _changed(job.id, job.kind)
                changed.append(job.id)
        elif MediaJob.objects.filter(id=job.id, worker=job.worker, attempt=job.attempt, state=job.state).update(
            state=State.FAILED if job.state != State.STOPPING else State.FINISHED,
            reason=lost if job.state != State.STOPPING else job.reason,
            lease_until=None,
            ended_at=now,
        ):
            _changed(job.id, job.kind)
            changed.append(job.id)
    # A message lost between a worker receiving it and claiming the job (the worker died).
    for job_id in MediaJob.objects.filter(state=State.PENDING, lease_until__lt=now).values_list("id", flat=True):
        _enqueue(job_id)
    return changed
