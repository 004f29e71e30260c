"""The aggregator: every metric from known synthetic reports, idempotency, rollups, retention."""

import pytest

from portal_stats import services
from portal_stats.models import AggregationCursor, StatsBucket, ViewerReport

NOW = 1_700_000_000
M = NOW - NOW % 60  # an aligned minute: 1699999980
OPERA_UA = "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 OPR/106.0"


@pytest.fixture
def scene(client_row, stream_row, quality_row):
    """Five viewers in minute M on two streams, one of whom switches rendition; one viewer in M+60."""
    q1 = quality_row
    q2 = services.quality_get_or_insert(stream_id=stream_row.id, bitrate=1500)[0]
    other = services.stream_get_or_insert(client_id=client_row.id, cdn_stream="http://cdn.example/other.m3u8")[0]
    a, b = stream_row.id, other.id

    def report(session, stream, browser, webrtc, cdn, swarm=0, up=0, quality=None):
        body = {"session": session, "stream": stream, "browser": browser, "webrtc": webrtc}
        body.update({"down_cdn": cdn, "down_swarm": swarm, "up_swarm": up})
        if quality:
            body["quality"] = quality.id
        return body

    minute = [
        report("s1", a, "chrome", True, 100, 300, 200, q1),
        report("s1", a, "chrome", True, 50, 150, 100, q1),
        report("s1", a, "chrome", True, 10, 0, 0, q2),
        report("s2", a, "firefox", True, 200, 100, 50, q1),
        report("s3", a, "ie", False, 500, quality=q2),
        report("s4", b, "safari", False, 1000),
        report("s5", b, OPERA_UA, True, 300, 700, 400),
    ]
    services.reports_ingest(reports=minute, now=M + 30)
    services.reports_ingest(reports=[report("s1", a, "chrome", True, 40, 60, 10, q1)], now=M + 75)
    services.stats_aggregate(start=M, end=M + 120)
    return {"client": client_row, "a": a, "b": b, "q1": q1.id, "q2": q2.id}


CLIENT_MINUTE = {
    "full.count": 5.0,
    "webrtc.count": 3.0,
    "browser.chrome.full.count": 1.0,
    "browser.firefox.full.count": 1.0,
    "browser.ie.full.count": 1.0,
    "browser.safari.full.count": 1.0,
    "browser.opera.full.count": 1.0,
    "browser.edge.full.count": 0.0,
    "full.down_total": 3410.0,
    "full.down_cdn": 2160.0,
    "full.down_swarm": 1250.0,
    "full.up_swarm": 750.0,
    "full.offload_percent": 100 * 1250 / 3410,
    "webrtc.down_total": 1910.0,
    "webrtc.down_cdn": 660.0,
    "webrtc.down_swarm": 1250.0,
    "webrtc.up_swarm": 750.0,
    "webrtc.offload_percent": 100 * 1250 / 1910,
}


def series(reader, metric, path="", start=M - 60, until=M + 60):
    response = reader.get(f"/portal/api/stats/time/{start}-{until}/{metric}/clients/11111111{path}")
    assert response.status_code == 200, response.content
    return response


@pytest.mark.django_db
@pytest.mark.parametrize(("metric", "expected"), list(CLIENT_MINUTE.items()))
def test_every_metric_at_client_level(reader, scene, metric, expected):
    points = series(reader, metric).json()
    assert [ts for _, ts in points] == [M, M + 60, M + 120]
    assert points[0][0] == pytest.approx(expected)
    assert points[2][0] is None  # nothing reported in that minute


@pytest.mark.django_db
def test_second_minute_and_invariants(reader, scene):
    def first_two(metric):
        return [value for value, _ in series(reader, metric).json()[:2]]

    assert first_two("full.count") == [5.0, 1.0]
    assert first_two("full.down_cdn") == [2160.0, 40.0]
    for kind in ("down_swarm", "up_swarm"):
        assert first_two(f"full.{kind}") == first_two(f"webrtc.{kind}")
    total, cdn, swarm = first_two("full.down_total"), first_two("full.down_cdn"), first_two("full.down_swarm")
    assert total == [c + s for c, s in zip(cdn, swarm, strict=True)]
    browsers = [first_two(f"browser.{b}.full.count") for b in ("chrome", "firefox", "ie", "safari", "opera")]
    assert [sum(column) for column in zip(*browsers, strict=True)] == first_two("full.count")


@pytest.mark.django_db
def test_stream_and_quality_levels_count_distinct_sessions(reader, scene):
    def first(metric, path):
        return series(reader, metric, path).json()[0][0]

    a, b = f"/streams/{scene['a']}", f"/streams/{scene['b']}"
    # s1 reported three times and at two qualities: one viewer of stream A, one of each quality.
    assert (first("full.count", a), first("webrtc.count", a)) == (3.0, 2.0)
    assert (first("full.down_cdn", a), first("full.down_swarm", a), first("full.up_swarm", a)) == (860.0, 550.0, 350.0)
    assert (first("full.count", b), first("webrtc.count", b), first("full.down_cdn", b)) == (2.0, 1.0, 1300.0)
    q1, q2 = f"{a}/qualities/{scene['q1']}", f"{a}/qualities/{scene['q2']}"
    assert (first("full.count", q1), first("full.down_cdn", q1), first("full.down_swarm", q1)) == (2.0, 350.0, 550.0)
    assert (first("full.count", q2), first("webrtc.count", q2), first("full.down_cdn", q2)) == (2.0, 1.0, 510.0)
    assert first("webrtc.offload_percent", q2) == 0.0


def _snapshot():
    return sorted(
        StatsBucket.objects.values_list("step", "client_id", "stream_id", "quality_id", "ts", "viewers", "down_cdn")
    )


@pytest.mark.django_db
def test_rerun_is_idempotent_and_picks_up_late_reports(scene):
    before = _snapshot()
    # Minute M: client, 2 streams, 2 qualities; M+60: client, stream A, quality 1; the hour and the day: 5 each.
    assert len(before) == 5 + 3 + 5 + 5
    services.stats_aggregate(start=M, end=M + 120)
    services.stats_aggregate(start=M - 600, end=M + 600)
    assert _snapshot() == before

    # A late report for minute M (a new viewer) is folded in on the next run.
    services.reports_ingest(reports=[{"session": "late", "stream": scene["a"], "down_cdn": 5}], now=M + 59)
    services.stats_aggregate(start=M, end=M + 60)
    row = StatsBucket.objects.get(step=60, client_id=scene["client"].id, stream_id=0, quality_id=0, ts=M)
    assert (row.viewers, row.down_cdn) == (6.0, 2165)
    hour = StatsBucket.objects.get(step=3600, client_id=scene["client"].id, stream_id=0, quality_id=0)
    assert (hour.samples, hour.viewers, hour.down_cdn) == (2, 3.5, 2205)


@pytest.mark.django_db
def test_hour_and_day_rollups_serve_long_ranges(reader, scene):
    hour, day = M - M % 3600, M - M % 86400
    response = series(reader, "full.count", start=hour - 3600, until=hour + 20 * 86400)
    assert (response["X-Stats-Resolution"], response["X-Stats-Step"]) == ("hour", "3600")
    points = response.json()
    assert points[0] == [3.0, hour]  # average of 5 and 1 viewers over the minutes with data
    assert all(value is None for value, _ in points[1:])
    assert series(reader, "full.down_cdn", start=hour - 3600, until=hour + 20 * 86400).json()[0] == [2200.0, hour]

    response = series(reader, "full.down_total", start=day - 86400, until=day + 365 * 86400)
    assert (response["X-Stats-Resolution"], response["X-Stats-Step"]) == ("day", "86400")
    assert response.json()[0] == [3410.0 + 100.0, day]
    minute = series(reader, "full.count")
    assert (minute["X-Stats-Resolution"], minute["X-Stats-Step"]) == ("minute", "60")


@pytest.mark.django_db
def test_pending_run_folds_closed_minutes_only_and_catches_up(stream_row):
    services.reports_ingest(reports=[{"session": "x", "stream": stream_row.id}], now=M + 10)
    services.reports_ingest(reports=[{"session": "y", "stream": stream_row.id}], now=M + 70)
    # At M+75 minute M is closed (and past its grace), minute M+60 is still open.
    assert services.stats_aggregate_pending(now=M + 75) == (M + 60 - 300, M + 60)
    assert set(StatsBucket.objects.filter(step=60).values_list("ts", flat=True)) == {M}
    assert AggregationCursor.objects.get(name="minute").position == M + 60
    # Two hours later (beat was down): the run starts where the last one stopped.
    start, end = services.stats_aggregate_pending(now=M + 7200 + 15)
    assert (start, end) == (M + 60, M + 7200)
    assert set(StatsBucket.objects.filter(step=60).values_list("ts", flat=True)) == {M, M + 60}


@pytest.mark.django_db
def test_retention_purges_old_raw_reports_and_buckets(scene, settings):
    settings.PORTAL_STATS = {"RAW_RETENTION": 3600, "MINUTE_RETENTION": 86400, "HOUR_RETENTION": 0, "DAY_RETENTION": 0}
    assert services.stats_purge(now=M + 1800) == {"raw": 0, "60": 0}
    assert ViewerReport.objects.count() == 8
    deleted = services.stats_purge(now=M + 2 * 86400)
    assert deleted == {"raw": 8, "60": 8}
    assert not StatsBucket.objects.filter(step=60).exists()
    assert StatsBucket.objects.filter(step=3600).count() == 5


@pytest.mark.django_db
def test_beat_schedule_and_tasks_run(settings, stream_row):
    from django.conf import settings as live_settings

    from portal_stats import tasks

    schedule = live_settings.CELERY_BEAT_SCHEDULE
    assert schedule["portal-stats-aggregate-minutes"]["task"] == tasks.aggregate_minutes.name
    assert schedule["portal-stats-aggregate-minutes"]["schedule"] == 60.0
    assert schedule["portal-stats-purge-expired"]["task"] == tasks.purge_expired.name

    services.reports_ingest(reports=[{"session": "x", "stream": stream_row.id}], now=M + 10)
    settings.PORTAL_STATS = {"LOOKBACK": 10**10}  # the task folds up to "now": reach back to M
    start, end = tasks.aggregate_minutes()
    assert start <= M < end
    assert StatsBucket.objects.filter(step=60, ts=M, stream_id=0).get().viewers == 1.0
    assert tasks.purge_expired()["raw"] == 1  # M is far older than the 2-day default


@pytest.mark.django_db
def test_aggregate_stats_command_refolds_a_window(stream_row, capsys):
    from django.core.management import CommandError, call_command

    services.reports_ingest(reports=[{"session": "x", "stream": stream_row.id}], now=M + 10)
    call_command("aggregate_stats", "--from", str(M), "--until", str(M + 60))
    assert f"folded minutes [{M}, {M + 60})" in capsys.readouterr().out
    assert StatsBucket.objects.filter(step=60, ts=M).count() == 2  # client and stream level
    with pytest.raises(CommandError):
        call_command("aggregate_stats", "--from", str(M))
    call_command("aggregate_stats", "--purge")
    assert not ViewerReport.objects.exists()
