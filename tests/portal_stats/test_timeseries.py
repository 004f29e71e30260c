"""The time-series API: the spec's example requests answered literally, null filling, bad input."""

import pytest

from portal_stats import selectors, services
from portal_stats.models import Stream

FROM, UNTIL = 1431654240, 1431654840
GRID = list(range(1431654300, 1431654900 + 1, 60))

# The spec's example responses (values of the 10 minutes with data; the 11th point is null).
SPEC = {
    "full.count": [535, 531, 533, 529, 527, 533, 534, 535, 535, 537],
    "webrtc.count": [438, 435, 435, 432, 428, 436, 435, 436, 438, 437],
    "full.down_cdn": [
        2158622720,
        2359073792,
        2503929856,
        2515304448,
        2211820544,
        2168904704,
        2057329664,
        2403556352,
        2362773504,
        2257200128,
    ],
    "webrtc.down_cdn": [
        1720442880,
        1863022592,
        1974493184,
        2028833792,
        1775206400,
        1710138368,
        1621176320,
        1892342784,
        1875288064,
        1821089792,
    ],
}
STREAM_SPEC = {
    "webrtc.count": [29, 30, 30, 30, 30, 30, 30, 30, 30, 31],
    "webrtc.down_cdn": [
        184758272,
        261952512,
        324497408,
        298819584,
        138602496,
        154801152,
        163495936,
        290296832,
        288438272,
        301142016,
    ],
}


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


@pytest.fixture
def spec_audience(client_row):
    """Reports that reproduce the spec's numbers: stream 1950124 carries the stream-level examples,
    a second stream the rest of the client's WebRTC viewers and every non-WebRTC viewer."""
    stream = Stream.objects.create(id=1950124, client=client_row, cdn_stream="http://cdn2.viblast.com/streams/a.m3u8")
    rest = services.stream_get_or_insert(client_id=client_row.id, cdn_stream="http://cdn2.viblast.com/streams/b.m3u8")[
        0
    ]
    for minute, ts in enumerate(GRID[:-1]):
        full, webrtc = SPEC["full.count"][minute], SPEC["webrtc.count"][minute]
        on_stream, stream_bytes = STREAM_SPEC["webrtc.count"][minute], STREAM_SPEC["webrtc.down_cdn"][minute]
        webrtc_bytes, all_bytes = SPEC["webrtc.down_cdn"][minute], SPEC["full.down_cdn"][minute]
        groups = [  # (stream, webrtc, viewers, CDN bytes of the group)
            (stream.id, True, on_stream, stream_bytes),
            (rest.id, True, webrtc - on_stream, webrtc_bytes - stream_bytes),
            (rest.id, False, full - webrtc, all_bytes - webrtc_bytes),
        ]
        reports = []
        for stream_id, has_webrtc, viewers, total in groups:
            for n, cdn in enumerate(_split(total, viewers)):
                # Two reports per session per minute: viewers must still count once.
                session = f"{stream_id}-{has_webrtc}-{n}"
                for half in _split(cdn, 2):
                    reports.append({"session": session, "stream": stream_id, "webrtc": has_webrtc, "down_cdn": half})
        services.reports_ingest(reports=reports, now=ts + 30)
    services.stats_aggregate(start=GRID[0], end=GRID[-1])
    return stream


def _expected(values: list[int]) -> list[list]:
    return [[float(v), ts] for v, ts in zip(values, GRID, strict=False)] + [[None, GRID[-1]]]


@pytest.mark.django_db
@pytest.mark.parametrize("metric", list(SPEC))
def test_spec_client_examples_literally(reader, spec_audience, metric):
    response = reader.get(f"/portal/api/stats/time/{FROM}-{UNTIL}/{metric}/clients/11111111")
    assert response.status_code == 200
    assert response.json() == _expected(SPEC[metric])
    assert response["X-Stats-Resolution"] == "minute"


@pytest.mark.django_db
@pytest.mark.parametrize("metric", list(STREAM_SPEC))
def test_spec_stream_examples_literally(reader, spec_audience, metric):
    response = reader.get(f"/portal/api/stats/time/{FROM}-{UNTIL}/{metric}/clients/11111111/streams/1950124")
    assert response.status_code == 200
    assert response.json() == _expected(STREAM_SPEC[metric])
    # The spec's body shape, byte for byte: floats with ".0" and a JSON null.
    assert response.content.startswith(b"[[") and b"[null,1431654900]]" in response.content.replace(b" ", b"")


def test_grid_alignment_rule():
    assert list(selectors.time_grid(FROM, UNTIL, 60)) == GRID and len(GRID) == 11
    # Unaligned ends: first = floor(from/60)*60 + 60, last = floor(until/60)*60 + 60, both included.
    assert list(selectors.time_grid(FROM + 1, UNTIL + 59, 60)) == GRID
    assert list(selectors.time_grid(FROM - 1, UNTIL - 1, 60)) == [FROM, *GRID[:-1]]
    assert list(selectors.time_grid(0, 3600, 3600)) == [3600, 7200]


@pytest.mark.django_db
def test_null_filling_and_numeric_client_id(reader, client_row, stream_row):
    services.reports_ingest(reports=[{"session": "a", "stream": stream_row.id}], now=GRID[3] + 1)
    services.reports_ingest(reports=[{"session": "b", "stream": stream_row.id}], now=GRID[6] + 1)
    services.stats_aggregate(start=GRID[0], end=GRID[-1])
    expected = [[1.0 if i in (3, 6) else None, ts] for i, ts in enumerate(GRID)]
    for key in ("11111111", str(client_row.id)):
        response = reader.get(f"/portal/api/stats/time/{FROM}-{UNTIL}/full.count/clients/{key}/")
        assert response.json() == expected
    quality_less = reader.get(
        f"/portal/api/stats/time/{FROM}-{UNTIL}/full.count/clients/11111111/streams/{stream_row.id}"
    )
    assert quality_less.json() == expected


@pytest.mark.django_db
def test_uuid_wins_over_numeric_id(operator, client_row):
    # Client 2's uuid is "1": the key "1" names client 2 (by uuid), not client 1 (by id).
    impostor = services.client_get_or_insert(uuid=str(client_row.id), name="Impostor")[0]
    services.reports_ingest(
        reports=[{"session": "a", "client": impostor.uuid, "cdn_stream": "http://x.example/s.m3u8"}], now=GRID[0]
    )
    services.stats_aggregate(start=GRID[0], end=GRID[1])
    response = operator.get(f"/portal/api/stats/time/{FROM}-{UNTIL}/full.count/clients/{client_row.id}")
    assert response.json()[0] == [1.0, GRID[0]]
    assert selectors.clients_by_keys({str(client_row.id), str(impostor.id)}) == {
        str(client_row.id): impostor.id,
        str(impostor.id): impostor.id,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status", "code", "fragment"),
    [
        (f"{UNTIL}-{FROM}/full.count/clients/11111111", 400, "invalid_range", "<from> must be before <until>"),
        (f"{FROM}-{FROM}/full.count/clients/11111111", 400, "invalid_range", "<from> must be before <until>"),
        ("yesterday-now/full.count/clients/11111111", 400, "invalid_range", "expected <from>-<until>"),
        (f"{FROM}/full.count/clients/11111111", 400, "invalid_range", "expected <from>-<until>"),
        ("-5-10/full.count/clients/11111111", 400, "invalid_range", "expected <from>-<until>"),
        (f"0-{100 * 365 * 86400}/full.count/clients/11111111", 400, "invalid_range", "Time range too long"),
        (
            f"{FROM}-{UNTIL}/full.views/clients/11111111",
            400,
            "unknown_metric",
            "Valid metrics: full.count, webrtc.count",
        ),
        (f"{FROM}-{UNTIL}/full.count/clients/nobody", 404, "not_found", "Client 'nobody' not found"),
        (f"{FROM}-{UNTIL}/full.count/clients/11111111/streams/999", 404, "not_found", "Stream '999' not found"),
        (f"{FROM}-{UNTIL}/full.count/clients/11111111/streams/abc", 404, "not_found", "Stream 'abc' not found"),
        (f"{FROM}-{UNTIL}/full.count/clients/11111111/streams/STREAM/qualities/999", 404, "not_found", "quality '999'"),
        (f"{FROM}-{UNTIL}/full.count/clients/other/streams/STREAM", 404, "not_found", "Stream"),
    ],
)
def test_bad_ranges_metrics_and_ids(operator, stream_row, path, status, code, fragment):
    services.client_get_or_insert(uuid="other", name="Other tenant")
    response = operator.get("/portal/api/stats/time/" + path.replace("STREAM", str(stream_row.id)))
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert fragment in response.json()["detail"]


@pytest.mark.django_db
def test_unknown_metric_lists_every_valid_metric(reader, client_row):
    response = reader.get(f"/portal/api/stats/time/{FROM}-{UNTIL}/nope/clients/11111111")
    for metric in selectors.METRICS:
        assert metric in response.json()["detail"]


@pytest.mark.django_db
def test_openapi_schema_documents_the_routes(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = [path for path in schema["paths"] if path.startswith("/portal/")]
    assert "/portal/tracker-api/reports/" in paths or "/portal/tracker-api/reports" in paths
    assert any("/portal/api/stats/time/" in path for path in paths)
    report_schema = schema["components"]["schemas"]["ViewerReportRequest"]
    assert {"session", "down_cdn", "down_swarm", "up_swarm", "webrtc", "browser"} <= set(report_schema["properties"])
