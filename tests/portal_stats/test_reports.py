"""Viewer report ingestion: shapes, name resolution, validation errors, stored rows."""

import pytest

from portal_stats import services
from portal_stats.models import StreamQuality, ViewerReport

NOW = 1_700_000_000
CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("chrome", "chrome"),
        ("IE", "ie"),
        ("Internet Explorer", "ie"),
        (CHROME_UA, "chrome"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0", "firefox"),
        ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15", "safari"),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 OPR/106.0", "opera"),
        ("Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36 Edg/120.0", "edge"),
        ("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", "ie"),
        ("curl/8.0", "other"),
    ],
)
def test_browser_code(value, code):
    assert services.browser_code(value) == code


@pytest.mark.django_db
def test_batch_via_http_stores_every_field(tracker, stream_row, quality_row):
    body = {
        "reports": [
            {
                "session": "a",
                "stream": stream_row.id,
                "quality": quality_row.id,
                "browser": CHROME_UA,
                "webrtc": True,
                "down_cdn": 100,
                "down_swarm": 200,
                "up_swarm": 50,
                "rebuffer_ms": 120,
                "startup_ms": 900,
            },
            {"session": "b", "client": "11111111", "cdn_stream": stream_row.cdn_stream, "browser": "ie", "down_cdn": 7},
        ]
    }
    response = tracker.post("/portal/tracker-api/reports/", body, format="json")
    assert (response.status_code, response.json()) == (202, {"accepted": 2})
    a = ViewerReport.objects.get(session="a")
    assert (a.client_id, a.stream_id, a.quality_id, a.browser, a.webrtc) == (
        stream_row.client_id,
        stream_row.id,
        quality_row.id,
        "chrome",
        True,
    )
    assert (a.down_cdn, a.down_swarm, a.up_swarm, a.rebuffer_ms, a.startup_ms) == (100, 200, 50, 120, 900)
    b = ViewerReport.objects.get(session="b")
    assert (b.stream_id, b.quality_id, b.browser, b.webrtc, b.down_swarm, b.rebuffer_ms) == (
        stream_row.id,
        0,
        "ie",
        False,
        0,
        None,
    )


@pytest.mark.django_db
def test_bare_list_body_and_numeric_client_key(tracker, stream_row):
    body = [{"session": "x", "client": stream_row.client_id, "cdn_stream": stream_row.cdn_stream}]
    response = tracker.post("/portal/tracker-api/reports", body, format="json")
    assert response.status_code == 202
    assert ViewerReport.objects.get().stream_id == stream_row.id


@pytest.mark.django_db
def test_new_cdn_url_and_bitrate_are_registered_once(client_row):
    url = "https://cdn.example.com/live/news/master.m3u8"
    reports = [
        {"session": f"s{i}", "client": "11111111", "cdn_stream": url, "bitrate": 800 + 400 * (i % 2)} for i in range(6)
    ]
    assert services.reports_ingest(reports=reports, now=NOW) == 6
    stream = client_row.streams.get(cdn_stream=url)
    assert sorted(stream.qualities.values_list("bitrate", flat=True)) == [800, 1200]
    assert set(ViewerReport.objects.values_list("stream_id", flat=True)) == {stream.id}
    assert ViewerReport.objects.filter(quality_id=stream.qualities.get(bitrate=1200).id).count() == 3


@pytest.mark.django_db
def test_report_ts_is_clamped_to_the_recent_window(stream_row):
    reports = [
        {"session": "old", "stream": stream_row.id, "ts": NOW - 10_000},
        {"session": "future", "stream": stream_row.id, "ts": NOW + 10_000},
        {"session": "recent", "stream": stream_row.id, "ts": NOW - 30.5},
        {"session": "none", "stream": stream_row.id},
    ]
    services.reports_ingest(reports=reports, now=NOW)
    assert dict(ViewerReport.objects.values_list("session", "ts")) == {
        "old": NOW - 120,
        "future": NOW,
        "recent": NOW - 31,
        "none": NOW,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("report", "message"),
    [
        ({"stream": 1}, "reports[1].session: required"),
        ({"session": "bad session!", "stream": 1}, "reports[1].session"),
        ({"session": "s"}, "reports[1]: give either 'stream' (id) or 'client' and 'cdn_stream'"),
        ({"session": "s", "stream": "1"}, "reports[1].stream: expected a stream id"),
        ({"session": "s", "stream": 1, "down_cdn": -5}, "reports[1].down_cdn"),
        ({"session": "s", "stream": 1, "down_cdn": 1.5}, "reports[1].down_cdn"),
        ({"session": "s", "stream": 1, "webrtc": "yes"}, "reports[1].webrtc"),
        ({"session": "s", "stream": 1, "down_swarm": 10}, "reports[1]: a viewer without WebRTC"),
        ({"session": "s", "stream": 1, "bitrate": "975"}, "reports[1].bitrate"),
        ({"session": "s", "stream": 1, "ts": "now"}, "reports[1].ts"),
        ({"session": "s", "stream": 1, "rebuffer_ms": True}, "reports[1].rebuffer_ms"),
        ({"session": "s", "stream": 1, "client": ["x"]}, "reports[1].client"),
        ({"session": "s", "stream": 10**30}, "reports[1].stream: expected a stream id"),
        ({"session": "s", "stream": 1, "quality": 10**30}, "reports[1].quality"),
        ("not an object", "reports[1]: expected an object"),
    ],
)
def test_invalid_report_rejects_the_whole_batch(tracker, stream_row, report, message):
    if isinstance(report, dict) and report.get("stream") == 1:
        report = {**report, "stream": stream_row.id}
    good = {"session": "ok", "stream": stream_row.id}
    response = tracker.post("/portal/tracker-api/reports/", {"reports": [good, report]}, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["detail"].startswith(message)
    assert ViewerReport.objects.count() == 0


@pytest.mark.django_db
def test_unknown_and_foreign_ids_are_400(operator, stream_row, quality_row):
    other_client = services.client_get_or_insert(uuid="other", name="Other")[0]
    other_stream = services.stream_get_or_insert(client_id=other_client.id, cdn_stream="http://o.example/s.m3u8")[0]
    cases = [
        ({"session": "s", "stream": 987654}, "stream: unknown stream id 987654"),
        (
            {"session": "s", "client": "nobody", "cdn_stream": "http://x.example/a.m3u8"},
            "client: unknown client 'nobody'",
        ),
        ({"session": "s", "stream": stream_row.id, "quality": 987654}, "quality: unknown stream quality id 987654"),
        ({"session": "s", "stream": other_stream.id, "quality": quality_row.id}, "reports[0].quality: quality"),
        ({"session": "s", "stream": other_stream.id, "client": "11111111"}, "reports[0].stream: stream"),
        ({"session": "s", "client": "11111111", "cdn_stream": "ftp://x/a"}, "cdn_stream: not an http(s) URL"),
    ]
    for report, message in cases:
        response = operator.post("/portal/tracker-api/reports/", [report], format="json")
        assert response.status_code == 400, report
        assert response.json()["detail"].startswith(message), response.json()
    assert ViewerReport.objects.count() == 0
    assert StreamQuality.objects.count() == 1


@pytest.mark.django_db
def test_empty_oversized_and_non_list_bodies(tracker, settings, stream_row):
    settings.PORTAL_STATS = {"MAX_BATCH": 3}
    for body in ([], {"reports": {}}, {"other": 1}, [{"session": "s", "stream": stream_row.id}] * 4):
        response = tracker.post("/portal/tracker-api/reports/", body, format="json")
        assert response.status_code == 400, body
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    huge = [{"session": f"s{i}", "stream": stream_row.id} for i in range(100)]
    response = tracker.post("/portal/tracker-api/reports/", huge, format="json")
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"


@pytest.mark.django_db
def test_batch_key_makes_retries_idempotent(tracker, stream_row):
    body = {"batch": "player-1-0001", "reports": [{"session": "a", "stream": stream_row.id, "down_cdn": 10}]}
    first = tracker.post("/portal/tracker-api/reports/", body, format="json")
    assert (first.status_code, first.json()) == (202, {"accepted": 1})
    retry = tracker.post("/portal/tracker-api/reports/", body, format="json")
    assert (retry.status_code, retry.json()) == (200, {"accepted": 0, "duplicate": True})
    assert ViewerReport.objects.count() == 1
    # A rejected batch does not burn its key: the corrected retry is stored.
    bad = {"batch": "player-1-0002", "reports": [{"session": "a", "stream": stream_row.id, "down_cdn": -1}]}
    assert tracker.post("/portal/tracker-api/reports/", bad, format="json").status_code == 400
    bad["reports"][0]["down_cdn"] = 1
    assert tracker.post("/portal/tracker-api/reports/", bad, format="json").status_code == 202
    assert ViewerReport.objects.count() == 2
    invalid_key = tracker.post("/portal/tracker-api/reports/", {**body, "batch": "has space"}, format="json")
    assert invalid_key.status_code == 400 and invalid_key.json()["detail"].startswith("batch:")


@pytest.mark.django_db
def test_overflowing_numbers_are_400_not_500(tracker, stream_row):
    body = '{"reports": [{"session": "s", "stream": STREAM, "ts": 1e400}]}'.replace("STREAM", str(stream_row.id))
    response = tracker.post("/portal/tracker-api/reports/", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["detail"].startswith("reports[0].ts")
    response = tracker.post(
        "/portal/tracker-api/streams/", {"client": 10**30, "cdn_stream": "http://a.b/c"}, format="json"
    )
    assert response.status_code == 400 and "client" in response.json()["detail"]
    response = tracker.post("/portal/tracker-api/stream-qualities/", {"stream": 10**30, "bitrate": 1}, format="json")
    assert response.status_code == 400 and "stream" in response.json()["detail"]
