"""Credentials: trackers need their client's write key, readers its read key, operators staff;
a key never reaches another client; PORTAL_STATS_OPEN=1 switches the checks off."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from portal_stats import services
from portal_stats.models import Client, ClientKey, ReportBatch, Stream, StreamQuality, ViewerReport

URL = "http://cdn2.viblast.com/streams/big_buck_bunny/adaptive/975k/stream.m3u8"
# The admin's client form carries the management forms of its two inlines (keys, streams).
INLINES_EMPTY = {f"{prefix}-{field}": 0 for prefix in ("keys", "streams") for field in ("TOTAL_FORMS", "INITIAL_FORMS")}
SERIES = "/portal/api/stats/time/1700000000-1700000600/full.count/clients/"


@pytest.fixture
def other(db):
    """Another tenant with a stream, and its write key."""
    client = services.client_get_or_insert(uuid="22222222", name="Other TV")[0]
    stream = services.stream_get_or_insert(client_id=client.id, cdn_stream="http://other.example/s.m3u8")[0]
    return client, stream, services.client_key_issue(client=client, kind=ClientKey.WRITE)


def _assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert set(response.json()) == {"detail", "code"}


@pytest.mark.django_db
def test_unauthenticated_writes_and_reads_are_401(api_client, stream_row):
    calls = [
        ("post", "/portal/tracker-api/clients/", {"name": "Evil", "uuid": "evil"}),
        ("post", "/portal/tracker-api/streams/", {"client": stream_row.client_id, "cdn_stream": URL}),
        ("post", "/portal/tracker-api/stream-qualities/", {"stream": stream_row.id, "bitrate": 1}),
        ("post", "/portal/tracker-api/reports/", [{"session": "s", "stream": stream_row.id}]),
        ("get", SERIES + "11111111", None),
    ]
    for method, path, body in calls:
        response = getattr(api_client, method)(path, body, format="json")
        _assert_refused(response, 401, "unauthenticated")
        assert response["WWW-Authenticate"] == 'Bearer realm="portal"'
    assert ViewerReport.objects.count() == 0 and StreamQuality.objects.count() == 0
    assert not Client.objects.filter(uuid="evil").exists()


@pytest.mark.django_db
def test_unknown_or_revoked_keys_are_401(stream_row, write_key):
    report = [{"session": "s", "stream": stream_row.id}]
    unknown = APIClient()
    unknown.credentials(HTTP_AUTHORIZATION="Bearer vbw_not-a-key")
    _assert_refused(unknown.post("/portal/tracker-api/reports/", report, format="json"), 401, "unauthenticated")
    call_command("portal_keys", "11111111", kind="write", rotate=True)  # revokes write_key
    revoked = APIClient()
    revoked.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    response = revoked.post("/portal/tracker-api/reports/", report, format="json")
    _assert_refused(response, 401, "unauthenticated")
    assert "revoked" in response.json()["detail"]


@pytest.mark.django_db
def test_a_key_of_the_wrong_kind_is_403(tracker, reader, stream_row):
    _assert_refused(tracker.get(SERIES + "11111111"), 403, "forbidden")
    response = reader.post("/portal/tracker-api/reports/", [{"session": "s", "stream": stream_row.id}], format="json")
    _assert_refused(response, 403, "forbidden")
    assert "write key" in response.json()["detail"]


@pytest.mark.django_db
def test_non_staff_users_are_not_operators(api_client, django_user_model, stream_row):
    api_client.force_login(django_user_model.objects.create_user(username="viewer", password="x"))
    _assert_refused(api_client.get(SERIES + "11111111"), 403, "forbidden")


@pytest.mark.django_db
def test_cross_client_report_injection_is_403(tracker, stream_row, other):
    other_client, other_stream, _ = other
    for report in (
        {"session": "s", "stream": other_stream.id},
        {"session": "s", "client": "22222222", "cdn_stream": "http://new.example/s.m3u8"},
        {"session": "s", "client": str(other_client.id), "cdn_stream": other_stream.cdn_stream},
    ):
        # One foreign report rejects the whole batch, own reports included.
        body = [{"session": "mine", "stream": stream_row.id}, report]
        _assert_refused(tracker.post("/portal/tracker-api/reports/", body, format="json"), 403, "forbidden")
    assert ViewerReport.objects.count() == 0
    assert not Stream.objects.filter(cdn_stream="http://new.example/s.m3u8").exists()


@pytest.mark.django_db
def test_a_write_key_registers_only_its_own_streams_and_qualities(tracker, client_row, stream_row, other):
    other_client, other_stream, _ = other
    foreign_stream = {"client": other_client.id, "cdn_stream": URL}
    _assert_refused(tracker.post("/portal/tracker-api/streams/", foreign_stream, format="json"), 403, "forbidden")
    unknown_client = {"client": 999999, "cdn_stream": URL}
    _assert_refused(tracker.post("/portal/tracker-api/streams/", unknown_client, format="json"), 403, "forbidden")
    foreign_quality = {"stream": other_stream.id, "bitrate": 975}
    response = tracker.post("/portal/tracker-api/stream-qualities/", foreign_quality, format="json")
    _assert_refused(response, 403, "forbidden")
    assert not StreamQuality.objects.filter(stream=other_stream).exists()

    own = tracker.post("/portal/tracker-api/streams/", {"client": client_row.id, "cdn_stream": URL}, format="json")
    assert (own.status_code, own.json()) == (200, {"id": stream_row.id})
    quality = tracker.post(
        "/portal/tracker-api/stream-qualities/", {"stream": stream_row.id, "bitrate": 975}, format="json"
    )
    assert quality.status_code == 201


@pytest.mark.django_db
def test_clients_are_created_by_operators_and_looked_up_by_their_tracker(operator, tracker, client_row, other):
    response = tracker.post("/portal/tracker-api/clients/", {"name": "x", "uuid": "11111111"}, format="json")
    assert (response.status_code, response.json()) == (200, {"id": client_row.id})
    for uuid in ("22222222", "brand-new"):
        response = tracker.post("/portal/tracker-api/clients/", {"name": "x", "uuid": uuid}, format="json")
        _assert_refused(response, 403, "forbidden")
    assert not Client.objects.filter(uuid="brand-new").exists()

    created = operator.post("/portal/tracker-api/clients/", {"name": "New TV", "uuid": "33333333"}, format="json")
    assert created.status_code == 201 and set(created.json()) == {"id"}
    assert created["Cache-Control"] == "no-store"
    write_key, read_key = created["X-Portal-Write-Key"], created["X-Portal-Read-Key"]
    assert write_key.startswith("vbw_") and read_key.startswith("vbr_")
    # Stored hashed: neither plain key is in the database.
    assert not ClientKey.objects.filter(key_hash__in=[write_key, read_key]).exists()
    again = operator.post("/portal/tracker-api/clients/", {"name": "New TV", "uuid": "33333333"}, format="json")
    assert again.status_code == 200 and "X-Portal-Write-Key" not in again

    # The issued keys work: the write key posts for the new client, the read key reads it.
    new_tracker = APIClient()
    new_tracker.credentials(HTTP_AUTHORIZATION=f"Bearer {write_key}")
    report = [{"session": "s", "client": "33333333", "cdn_stream": URL}]
    assert new_tracker.post("/portal/tracker-api/reports/", report, format="json").status_code == 202
    new_reader = APIClient()
    new_reader.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert new_reader.get(SERIES + "33333333").status_code == 200
    _assert_refused(new_reader.get(SERIES + "11111111"), 403, "forbidden")


@pytest.mark.django_db
def test_a_read_key_reads_only_its_own_client(reader, client_row, stream_row, other):
    other_client, other_stream, _ = other
    assert reader.get(SERIES + "11111111").status_code == 200
    assert reader.get(f"{SERIES}{client_row.id}/streams/{stream_row.id}").status_code == 200
    for path in ("22222222", str(other_client.id), f"22222222/streams/{other_stream.id}", "nobody"):
        # Another client, or one that does not exist, is the same 403: the key learns nothing.
        _assert_refused(reader.get(SERIES + path), 403, "forbidden")
    # A stream of another client under one's own client is not found, as before.
    _assert_refused(reader.get(f"{SERIES}11111111/streams/{other_stream.id}"), 404, "not_found")


@pytest.mark.django_db
def test_the_key_may_travel_in_the_query_string(api_client, write_key, read_key, stream_row):
    report = [{"session": "s", "stream": stream_row.id}]
    response = api_client.post(f"/portal/tracker-api/reports/?key={write_key}", report, format="json")
    assert response.status_code == 202
    assert api_client.get(f"{SERIES}11111111?key={read_key}").status_code == 200


@pytest.mark.django_db
def test_batch_keys_are_per_client(tracker, stream_row, other):
    _, other_stream, other_key = other
    other_tracker = APIClient()
    other_tracker.credentials(HTTP_AUTHORIZATION=f"Bearer {other_key}")
    mine = {"batch": "player-1", "reports": [{"session": "a", "stream": stream_row.id}]}
    theirs = {"batch": "player-1", "reports": [{"session": "a", "stream": other_stream.id}]}
    # The other tenant posting the same batch key first does not make ours a "duplicate".
    assert other_tracker.post("/portal/tracker-api/reports/", theirs, format="json").status_code == 202
    assert tracker.post("/portal/tracker-api/reports/", mine, format="json").status_code == 202
    assert ReportBatch.objects.count() == 2 and ViewerReport.objects.count() == 2


@pytest.mark.django_db
def test_open_mode_needs_no_credentials_and_ignores_stale_keys(api_client, settings, stream_row):
    settings.PORTAL_STATS = {"OPEN": 1}
    created = api_client.post("/portal/tracker-api/clients/", {"name": "Demo", "uuid": "demo"}, format="json")
    assert created.status_code == 201
    report = [{"session": "s", "stream": stream_row.id}]
    assert api_client.post("/portal/tracker-api/reports/", report, format="json").status_code == 202
    api_client.credentials(HTTP_AUTHORIZATION="Bearer vbw_stale")
    assert api_client.post("/portal/tracker-api/reports/", report, format="json").status_code == 202
    assert api_client.get(SERIES + "11111111").status_code == 200


@pytest.mark.django_db
def test_admin_shows_and_rotates_keys(admin_client, client_row, write_key):
    page = admin_client.get(f"/admin/portal_stats/client/{client_row.id}/change/")
    assert (
        page.status_code == 200 and write_key[:12].encode() in page.content and write_key.encode() not in page.content
    )
    response = admin_client.post(
        "/admin/portal_stats/client/",
        {"action": "rotate_write_key", "_selected_action": [client_row.id]},
        follow=True,
    )
    [message] = [str(m) for m in response.context["messages"]]
    new_key = message.split(": ")[1].split(" ")[0]
    assert new_key.startswith("vbw_") and new_key != write_key
    assert list(ClientKey.objects.filter(client=client_row, kind="write").values_list("hint", flat=True)) == [
        new_key[:12]
    ]


@pytest.mark.django_db
def test_a_client_added_in_the_admin_gets_keys(admin_client):
    response = admin_client.post(
        "/admin/portal_stats/client/add/", {"uuid": "44444444", "name": "Admin TV", **INLINES_EMPTY}, follow=True
    )
    messages = [str(m) for m in response.context["messages"]]
    assert any("New write key" in m and "vbw_" in m for m in messages)
    assert any("New read key" in m and "vbr_" in m for m in messages)
    assert ClientKey.objects.filter(client__uuid="44444444").count() == 2
