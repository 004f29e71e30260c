"""The media-job runtime: one asyncio loop per job, joined to its room like a browser.

:func:`run_job` is what the Celery task on the ``media`` queue calls. It claims the job
(``services.job_claim``), joins the job's room through the portal's signaling with an
internal token (so a worker may run on any machine that reaches the portal), lets the
job's :class:`JobRunner` do its work, and heartbeats meanwhile: each heartbeat renews the
lease, publishes the runner's progress, and brings back what REST changed — ``stopping``
ends the job within a heartbeat (``MEDIA_JOB_HEARTBEAT_SECONDS``), a new ``spec`` is
applied live (``JobRunner.reconfigure``), a row that is no longer ours (reaped) aborts.

A job kind is a :class:`JobRunner` subclass (``kind``, ``cost``); recordings, streaming-outs
and streaming-ins are modules of this package, every later media feature too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import ClassVar

from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings
from django.db import connections

from streamengine import services as engine
from streamengine.client import ConferenceClient
from streamengine.jobs import services
from streamengine.media.ice import use_host_addresses, use_ice_servers
from streamengine.models import MediaJob

logger = logging.getLogger(__name__)

# Every running worker also looks for dead workers' jobs (beat does too), so one is found
# within a lease and this period even when beat is not running.
REAP_EVERY_SECONDS = 2.0


class JobFailed(Exception):
    """The job cannot go on; the message is the reason recorded on the job."""


class JobRunner:
    """One kind of media job. ``start`` sets it up (raise :class:`JobFailed` to refuse),
    ``finished`` resolves when the job ends by itself (its source ended), ``stop`` ends it
    cleanly (close files, playlists), ``progress`` is reported with each heartbeat."""

    kind: ClassVar[str]
    cost: ClassVar[float] = 1.0  # CPU cores (the worker's budget)
    kinds: ClassVar[dict[str, type[JobRunner]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            JobRunner.kinds[cls.kind] = cls

    def __init__(self, job: MediaJob, client: ConferenceClient | None) -> None:
        self.job = job
        self.spec = job.spec
        self.client = client
        self.started = time.monotonic()
        self.finished: asyncio.Future = asyncio.get_running_loop().create_future()
        self.result: dict = {}  # what it produced (recorded on the job)

    async def start(self) -> None:
        raise NotImplementedError

    async def reconfigure(self, spec: dict) -> None:
        """REST changed the spec (PATCH) while the job runs."""
        self.spec = spec

    async def stop(self) -> None:
        raise NotImplementedError

    def progress(self) -> dict:
        return {"duration": round(time.monotonic() - self.started, 3)}

    def end(self, failure: str = "") -> None:
        """The job ends by itself: cleanly, or with ``failure`` as the reason."""
        if not self.finished.done():
            self.finished.set_result(failure)


def _job_token(job: MediaJob) -> str:
    # The participant's user name: the spec's ``participant`` (an egress task's workerUid), else kind-id.
    # The role: the spec's ``role`` (a SIP caller's, ``sip``), else the job's own (``admin``).
    user = job.spec.get("participant") or f"{job.kind}-{job.id}"
    role = job.spec.get("role") or "admin"
    return engine.token_create(domain_id=job.domain_id, user=user, role=role, job_id=job.id)


@contextlib.asynccontextmanager
async def _joined(job: MediaJob) -> AsyncIterator[ConferenceClient | None]:
    """The job's room, joined through the portal's signaling; None for a job with no room."""
    if job.domain_id is None:
        yield None
        return
    token = await sync_to_async(_job_token)(job)
    async with ConferenceClient(settings.OWT_INTERNAL_SIGNALING_URL) as client:
        await client.join(token)
        yield client


async def _start(runner: JobRunner, job: MediaJob, worker: str) -> bool:
    """``runner.start()`` with the lease renewed meanwhile (a page capture's browser may take
    longer than a lease to start); False if the job stopped being ours before it started."""
    starting = asyncio.create_task(runner.start())
    heartbeat = sync_to_async(services.job_heartbeat)
    while True:
        done, _ = await asyncio.wait({starting}, timeout=settings.MEDIA_JOB_HEARTBEAT_SECONDS)
        if done:
            starting.result()  # JobFailed: the job cannot start
            return True
        progress = {"starting": round(time.monotonic() - runner.started, 3)}
        if await heartbeat(job_id=job.id, worker=worker, attempt=job.attempt, progress=progress, running=False) is None:
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            return False


async def _run(job: MediaJob, worker: str) -> None:
    runner_class = JobRunner.kinds.get(job.kind)
    if runner_class is None:
        raise JobFailed(f"unknown job kind {job.kind!r}")
    use_ice_servers(json.loads(settings.ICE_SERVERS_JSON or "[]"))
    use_host_addresses(settings.MEDIA_HOST_ADDRESSES)
    async with _joined(job) as client:
        runner = runner_class(job, client)
        heartbeat = sync_to_async(services.job_heartbeat)
        failure = ""
        reaped_at = time.monotonic()
        record = sync_to_async(services.job_record_result)
        try:
            if not await _start(runner, job, worker):
                logger.warning("media job %s is no longer ours; aborting", job.id)
                return
            # What it writes is known before it is seen running.
            recorded = dict(runner.result)
            await record(job_id=job.id, worker=worker, attempt=job.attempt, result=recorded)
            while not runner.finished.done():
                if time.monotonic() - reaped_at > REAP_EVERY_SECONDS:
                    reaped_at = time.monotonic()
                    await sync_to_async(services.job_reap_expired)()
                row = await heartbeat(
                    job_id=job.id, worker=worker, attempt=job.attempt, progress=runner.progress(), running=True
                )
                if row is None:
                    logger.warning("media job %s is no longer ours; aborting", job.id)
                    return
                if row.state == MediaJob.State.STOPPING:
                    break
                if row.spec != runner.spec:
                    await runner.reconfigure(row.spec)
                if runner.result != recorded:
                    recorded = dict(runner.result)
                    await record(job_id=job.id, worker=worker, attempt=job.attempt, result=recorded)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(runner.finished), settings.MEDIA_JOB_HEARTBEAT_SECONDS)
            failure = runner.finished.result() if runner.finished.done() else ""
        finally:
            with contextlib.suppress(Exception):
                await runner.stop()
        await sync_to_async(services.job_heartbeat)(
            job_id=job.id, worker=worker, attempt=job.attempt, progress=runner.progress(), running=False
        )
        await sync_to_async(services.job_end)(
            job_id=job.id, worker=worker, attempt=job.attempt, failed=failure, result=runner.result
        )


def run_job(job_id: str) -> str:
    """Run job ``job_id`` in this process if it is ours to run; returns how it ended."""
    worker = services.worker_name()
    services.job_reap_expired()  # a worker that starts may be the first to see a dead one's jobs
    job = services.job_claim(job_id=job_id, worker=worker)
    if job is None:
        return "not claimed"
    try:
        asyncio.run(run_held(job, worker))
    finally:
        connections.close_all()
    ended = MediaJob.objects.filter(id=job_id).first()
    return ended.state if ended is not None else "deleted"  # with its room


async def run_held(job: MediaJob, worker: str) -> None:
    """Run a job this process holds to its end, on the running loop (a SIP agent runs the
    calls it answers this way, beside itself: ``services.job_create_held``)."""
    try:
        await _run(job, worker)
    except JobFailed as exc:
        await sync_to_async(services.job_end)(job_id=job.id, worker=worker, attempt=job.attempt, failed=str(exc))
    except Exception as exc:
        logger.exception("media job %s failed", job.id)
        await sync_to_async(services.job_end)(
            job_id=job.id, worker=worker, attempt=job.attempt, failed=f"{type(exc).__name__}: {exc}"
        )
