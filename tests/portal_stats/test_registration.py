"""tracker-api get-or-insert: ids, status codes, validation, and races against PostgreSQL."""

import threading

import pytest
from django.db import connection

from portal_stats import services
from portal_stats.models import Client, StatsBucket, Stream, StreamQuality, ViewerReport

URL = "http://cdn2.viblast.com/streams/big_buck_bunny/adaptive/975k/stream.m3u8"


@pytest.mark.django_db
def test_spec_registration_sequence(operator):
    response = operator.post("/portal/tracker-api/clients/", {"name": "ACME TV", "uuid": "11111111"}, format="json")
    assert response.status_code == 201
    client_id = response.json()["id"]
    assert Client.objects.get(id=client_id).uuid == "11111111"

    again = operator.post("/portal/tracker-api/clients/", {"name": "Renamed", "uuid": "11111111"}, format="json")
    assert (again.status_code, again.json()) == (200, {"id": client_id})
    assert Client.objects.get(id=client_id).name == "ACME TV"

    response = operator.post("/portal/tracker-api/streams/", {"client": client_id, "cdn_stream": URL}, format="json")
    assert response.status_code == 201
    stream_id = response.json()["id"]
    again = operator.post("/portal/tracker-api/streams/", {"client": client_id, "cdn_stream": URL}, format="json")
    assert (again.status_code, again.json()) == (200, {"id": stream_id})

    response = operator.post(
        "/portal/tracker-api/stream-qualities/", {"stream": stream_id, "bitrate": 975}, format="json"
    )
    assert response.status_code == 201
    quality_id = response.json()["id"]
    again = operator.post("/portal/tracker-api/stream-qualities", {"stream": stream_id, "bitrate": 975}, format="json")
    assert (again.status_code, again.json()) == (200, {"id": quality_id})
    other = operator.post(
        "/portal/tracker-api/stream-qualities/", {"stream": stream_id, "bitrate": 1500}, format="json"
    )
    assert other.status_code == 201 and other.json()["id"] != quality_id
    assert StreamQuality.objects.filter(stream_id=stream_id).count() == 2


@pytest.mark.django_db
def test_same_url_under_two_clients_is_two_streams(client_row):
    other = services.client_get_or_insert(uuid="22222222", name="Other")[0]
    first = services.stream_get_or_insert(client_id=client_row.id, cdn_stream=URL)[0]
    second = services.stream_get_or_insert(client_id=other.id, cdn_stream=URL)[0]
    assert first.id != second.id


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body", "fragment"),
    [
        ("clients", {"uuid": "1"}, "name"),
        ("clients", {"name": "x"}, "uuid"),
        ("clients", {"name": "x", "uuid": "has/slash"}, "uuid"),
        ("clients", {"name": "x", "uuid": "u" * 65}, "uuid"),
        ("streams", {"cdn_stream": URL}, "client"),
        ("streams", {"client": "abc", "cdn_stream": URL}, "client"),
        ("streams", {"client": 1, "cdn_stream": "not a url"}, "cdn_stream"),
        ("stream-qualities", {"stream": 1}, "bitrate"),
        ("stream-qualities", {"stream": 1, "bitrate": "fast"}, "bitrate"),
        ("stream-qualities", {"stream": 1, "bitrate": 0}, "bitrate"),
    ],
)
def test_invalid_bodies_are_400_naming_the_field(operator, path, body, fragment):
    response = operator.post(f"/portal/tracker-api/{path}/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert fragment in response.json()["detail"]


@pytest.mark.django_db
def test_unknown_parent_ids_are_400(operator, stream_row):
    response = operator.post("/portal/tracker-api/streams/", {"client": 999999, "cdn_stream": URL}, format="json")
    assert response.status_code == 400
    assert response.json() == {"detail": "client: unknown client id 999999", "code": "unknown_id"}
    response = operator.post("/portal/tracker-api/stream-qualities/", {"stream": 999999, "bitrate": 975}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_id"
    assert Stream.objects.count() == 1 and StreamQuality.objects.count() == 0


@pytest.mark.django_db
def test_malformed_json_is_400_in_portal_format(operator):
    response = operator.post("/portal/tracker-api/clients/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def _race(worker, count: int = 8) -> list:
    """Run ``worker`` in ``count`` threads released together; each thread uses its own connection."""
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run():
        try:
            barrier.wait()
            results.append(worker())
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


# SET lock_timeout is PostgreSQL's; the races themselves run on SQLite too (file test database).
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="uses PostgreSQL's lock_timeout")


@pytest.mark.django_db(transaction=True)
def test_concurrent_get_or_insert_yields_one_row_each():
    clients = _race(lambda: services.client_get_or_insert(uuid="race", name="Race"))
    assert len({c.id for c, _ in clients}) == 1
    assert sum(created for _, created in clients) == 1
    client_id = clients[0][0].id

    streams = _race(lambda: services.stream_get_or_insert(client_id=client_id, cdn_stream=URL))
    assert len({s.id for s, _ in streams}) == 1 and sum(created for _, created in streams) == 1

    stream_id = streams[0][0].id
    qualities = _race(lambda: services.quality_get_or_insert(stream_id=stream_id, bitrate=975))
    assert len({q.id for q, _ in qualities}) == 1 and sum(created for _, created in qualities) == 1
    assert (Client.objects.count(), Stream.objects.count(), StreamQuality.objects.count()) == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_report_batches_register_a_new_stream_and_quality_once():
    client = services.client_get_or_insert(uuid="race", name="Race")[0]
    counter = iter(range(100))

    def post():
        n = next(counter)
        report = {"session": f"s{n}", "client": "race", "cdn_stream": URL, "bitrate": 1200, "down_cdn": 10}
        return services.reports_ingest(reports=[report])

    assert _race(post) == [1] * 8
    assert Stream.objects.filter(client=client).count() == 1
    assert StreamQuality.objects.filter(bitrate=1200).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_of_one_batch_store_it_once():
    client = services.client_get_or_insert(uuid="race", name="Race")[0]
    stream = services.stream_get_or_insert(client_id=client.id, cdn_stream=URL)[0]
    reports = [{"session": f"s{n}", "stream": stream.id, "down_cdn": 100} for n in range(50)]
    results = _race(lambda: services.reports_ingest(reports=reports, batch="retry-me"))
    assert sorted(results, key=str) == [50] + [None] * 7
    assert ViewerReport.objects.count() == 50


@pytest.mark.django_db(transaction=True)
def test_overlapping_aggregator_runs_take_turns():
    stream = services.stream_get_or_insert(
        client_id=services.client_get_or_insert(uuid="race", name="Race")[0].id, cdn_stream=URL
    )[0]
    now = 1_700_000_000
    reports = [{"session": f"s{n}", "stream": stream.id, "bitrate": 500 + n % 3, "down_cdn": 1} for n in range(300)]
    services.reports_ingest(reports=reports, now=now - 70)
    flip = iter(range(8))

    def fold():
        # Half beat runs, half manual re-folds of a wider window, all upserting the same buckets.
        if next(flip) % 2:
            return services.stats_aggregate_pending(now=now)
        return services.stats_aggregate(start=now - 3600, end=now)

    _race(fold)
    minute = StatsBucket.objects.get(step=60, client_id=stream.client_id, stream_id=0, quality_id=0)
    assert (minute.viewers, minute.down_cdn) == (300.0, 300)
    assert StatsBucket.objects.filter(step=60).count() == 1 + 1 + 3


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_fold_waits_for_the_aggregation_lock():
    from django.db import OperationalError, transaction

    holding, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                services._aggregation_lock()
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert holding.wait(30)
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '200ms'")
        # While another transaction folds, this one cannot start folding (it would wait; here it times out).
        with pytest.raises(OperationalError, match="lock timeout"):
            services.stats_aggregate(start=1_700_000_000, end=1_700_000_060)
    finally:
        release.set()
        holder.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")
