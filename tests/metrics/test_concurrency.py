"""Concurrent SDK requests resolve through constraints, not check-then-insert."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from metrics.models import Conference, Connection, GenericEvent, Issue, Participant
from metrics.testing import stats_payload

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def _run_together(target, count: int) -> list:
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = target(index)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_initialize_creates_one_conference(app, sdk_factory):
    def initialize(index: int) -> int:
        body = {"apiKey": app.api_key, "conferenceId": "race", "userId": f"user-{index % 2}", "userName": "x"}
        status, answer = sdk_factory().post("initialize", body, token=False)
        return status

    assert _run_together(initialize, THREADS) == [200] * THREADS
    assert Conference.objects.filter(app=app, conference_id="race").count() == 1
    assert Participant.objects.filter(app=app).count() == 2
    assert Conference.objects.get().participants.count() == 2


def test_concurrent_stats_lose_nothing_and_flag_once(app, sdk):
    sdk.join(app.api_key, "room", "alice")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "bob"})
    body = {"peerId": ids["peer_id"], "connectionId": ids["connection_id"]}

    def post(index: int) -> tuple:
        data = stats_payload(index, candidate_type="relay", protocol="tcp")
        return sdk.post("stats", {**body, "data": data})

    assert _run_together(post, THREADS) == [(200, "")] * THREADS
    assert GenericEvent.objects.filter(category="S", connection_id=ids["connection_id"]).count() == THREADS
    assert sorted(Issue.objects.values_list("code", flat=True)) == ["tcp_used", "turn_used"]
    connection = Connection.objects.get(pk=ids["connection_id"])
    assert connection.type == "r" and connection.connection_info["established"] is True
