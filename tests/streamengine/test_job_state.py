"""The media-job state machine (``streamengine.jobs.services``): claim once, lease, stop, reap, CPU budget."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from streamengine.jobs import services as jobs
from streamengine.models import MediaJob
from tests.streamengine import live_state as ls

State = MediaJob.State


@pytest.fixture
def domain(db, django_capture_on_commit_callbacks):
    service, _, _ = ls.tenant("jobs")
    return ls.room(service).id


def make(domain: str, cost: float = 0.05) -> MediaJob:
    return jobs.job_create(domain_id=domain, kind="recording", spec={"media": {}}, cost=cost)


def test_a_job_is_claimed_once(domain):
    job = make(domain)
    assert len(job.id) == 18 and job.id.isdigit() and job.state == State.PENDING
    claimed = jobs.job_claim(job_id=job.id, worker="host-a:1")
    assert (claimed.state, claimed.worker, claimed.attempt) == (State.STARTING, "host-a:1", 1)
    assert jobs.job_claim(job_id=job.id, worker="host-b:2") is None  # a redelivered message runs nothing


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_have_one_winner(django_capture_on_commit_callbacks):
    if connection.vendor == "sqlite":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    service, _, _ = ls.tenant("jobs-race")
    job = make(ls.room(service).id)
    winners, barrier = [], threading.Barrier(4)

    def claim(worker: str) -> None:
        barrier.wait()
        if jobs.job_claim(job_id=job.id, worker=worker) is not None:
            winners.append(worker)
        connection.close()

    threads = [threading.Thread(target=claim, args=(f"h{i}:{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_heartbeat_renews_the_lease_and_a_lost_job_says_so(domain):
    job = jobs.job_claim(job_id=make(domain).id, worker="h:1")
    row = jobs.job_heartbeat(job_id=job.id, worker="h:1", attempt=1, progress={"duration": 1}, running=True)
    assert row.state == State.RUNNING and row.progress == {"duration": 1}
    assert row.lease_until > timezone.now()
    # Another holder (after a reap and a new claim) makes the old one's heartbeat fail.
    assert jobs.job_heartbeat(job_id=job.id, worker="h:2", attempt=1, progress={}, running=True) is None


def test_stop_ends_a_pending_job_at_once_and_asks_a_running_one(domain):
    pending = make(domain)
    assert jobs.job_stop(job_id=pending.id).state == State.FINISHED
    running = jobs.job_claim(job_id=make(domain).id, worker="h:1")
    assert jobs.job_stop(job_id=running.id).state == State.STOPPING
    jobs.job_end(job_id=running.id, worker="h:1", attempt=1, result={"files": ["x"]})
    ended = MediaJob.objects.get(id=running.id)
    assert (ended.state, ended.result, ended.reason) == (State.FINISHED, {"files": ["x"]}, "stopped")


def test_a_lapsed_lease_restarts_the_job_then_fails_it(domain, settings):
    settings.MEDIA_JOB_MAX_ATTEMPTS = 2
    job = make(domain)
    for attempt in (1, 2):
        jobs.job_claim(job_id=job.id, worker=f"h:{attempt}")
        MediaJob.objects.filter(id=job.id).update(lease_until=timezone.now() - timedelta(seconds=1))
        assert jobs.job_reap_expired() == [job.id]
        job.refresh_from_db()
    assert job.state == State.FAILED and "h:2 stopped renewing its lease" in job.reason
    assert job.ended_at is not None


def test_a_stopping_job_whose_worker_died_is_finished_not_restarted(domain):
    job = jobs.job_claim(job_id=make(domain).id, worker="h:1")
    jobs.job_stop(job_id=job.id)
    MediaJob.objects.filter(id=job.id).update(lease_until=timezone.now() - timedelta(seconds=1))
    jobs.job_reap_expired()
    assert MediaJob.objects.get(id=job.id).state == State.FINISHED


def test_a_full_host_leaves_new_jobs_to_others(domain, settings):
    settings.MEDIA_JOB_CPU_BUDGET = 1.0
    busy = make(domain, cost=0.8)
    assert jobs.job_claim(job_id=busy.id, worker="host-a:1") is not None
    heavy = make(domain, cost=0.5)
    assert jobs.job_claim(job_id=heavy.id, worker="host-a:2") is None
    heavy.refresh_from_db()
    assert heavy.state == State.PENDING and "no CPU budget on host-a" in heavy.progress["waiting"]
    assert jobs.job_claim(job_id=heavy.id, worker="host-b:1") is not None  # another host has room
    # A job bigger than the whole budget still runs on an idle host (nothing else could take it).
    huge = make(domain, cost=5.0)
    assert jobs.job_claim(job_id=huge.id, worker="host-c:1") is not None


def test_admin_lists_jobs_and_live_state_and_stops_a_job(domain, admin_client):
    job = jobs.job_claim(job_id=make(domain).id, worker="h:1")
    for page in ("mediajob", "node", "participant", "publication", "subscription"):
        assert admin_client.get(f"/admin/streamengine/{page}/").status_code == 200
    assert job.id.encode() in admin_client.get("/admin/streamengine/mediajob/").content
    assert admin_client.get(f"/admin/streamengine/mediajob/{job.id}/change/").status_code == 200
    admin_client.post("/admin/streamengine/mediajob/", {"action": "stop", "_selected_action": [job.id]})
    assert MediaJob.objects.get(id=job.id).state == State.STOPPING
