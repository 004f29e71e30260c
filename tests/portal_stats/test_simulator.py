"""The simulator posts through real HTTP (a live server thread) and its reports aggregate."""

import time

import pytest
from django.core.management import CommandError, call_command

from portal_stats import services
from portal_stats.models import Client, StatsBucket, ViewerReport


@pytest.mark.django_db(transaction=True)
def test_simulator_posts_reports_that_aggregate(live_server, capsys):
    call_command("portal_keys", "sim-tv", create="Simulated TV", kind="write")
    write_key = capsys.readouterr().out.split("write: ")[1].strip()
    call_command(
        "simulate_viewers",
        url=live_server.url,
        key=write_key,
        viewers=300,
        streams=2,
        duration=1.0,
        interval=0.5,
        watch_mean=2.0,
        seed=3,
    )
    out = capsys.readouterr().out
    assert "done:" in out and "left=" in out
    client = Client.objects.get(uuid="sim-tv")
    reports = ViewerReport.objects.filter(client_id=client.id)
    assert reports.count() >= 300
    assert set(reports.values_list("browser", flat=True)) >= {"chrome", "firefox", "safari", "ie"}
    assert not reports.filter(browser="ie", webrtc=True).exists()
    assert reports.filter(webrtc=True, down_swarm__gt=0).exists()
    assert reports.exclude(startup_ms=None).count() >= 300  # every new session reports its startup once

    now = time.time()
    services.stats_aggregate(start=int(now) - 300, end=int(now) + 60)
    minute = StatsBucket.objects.filter(step=60, client_id=client.id, stream_id=0, quality_id=0)
    assert sum(minute.values_list("viewers", flat=True)) >= 300
    assert all(b.webrtc_viewers < b.viewers for b in minute)


def test_unreachable_server_is_a_command_error():
    with pytest.raises(CommandError, match="cannot reach"):
        call_command("simulate_viewers", url="http://127.0.0.1:9", duration=0.1)


@pytest.mark.django_db(transaction=True)
def test_simulator_without_a_key_is_refused_by_a_closed_portal(live_server):
    with pytest.raises(CommandError, match="401"):
        call_command("simulate_viewers", url=live_server.url, duration=0.1)


@pytest.mark.django_db(transaction=True)
def test_simulator_names_its_ids_first_and_stops_cleanly_on_ctrl_c(live_server, capsys, monkeypatch):
    from portal_stats.management.commands import simulate_viewers

    call_command("portal_keys", "sim-tv", create="Simulated TV", kind="write")
    write_key = capsys.readouterr().out.split("write: ")[1].strip()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt  # what Ctrl-C raises while the simulator waits for its next tick

    monkeypatch.setattr(simulate_viewers.time, "sleep", interrupted)
    call_command("simulate_viewers", url=live_server.url, key=write_key, viewers=10, streams=2, seed=1)
    client = Client.objects.get(uuid="sim-tv")
    first, *rest = capsys.readouterr().out.splitlines()
    streams = list(client.streams.values_list("id", flat=True))
    assert f"client 'sim-tv' (id {client.id}), streams {streams}" in first
    assert "/portal/dashboard" in first
    assert rest[0] == "interrupted" and rest[1].startswith("done: 0 reports")
