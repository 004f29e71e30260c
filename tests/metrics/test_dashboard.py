"""Dashboard routes: real authentication, tenant scoping, pagination, reset-key, graphs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from metrics.models import App, GenericEvent, Organization
from metrics.services.dashboard import dashboard_token_create
from metrics.tasks import stats_purge_expired
from metrics.testing import stats_payload

pytestmark = pytest.mark.django_db(transaction=True)


def token_client(user) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {dashboard_token_create(user=user)}")


@pytest.fixture
def owner(organization):
    return organization.members.get()


@pytest.fixture
def stranger(django_user_model):
    user = django_user_model.objects.create_user("stranger", password="pw")
    other = Organization.objects.create(name="Other")
    other.members.add(user)
    App.objects.create(organization=other, name="Theirs")
    return user


@pytest.fixture
def call(app, sdk_factory, eager_celery):
    """A finished one-connection call with 3 stats samples."""
    sdk = sdk_factory()
    sdk.join(app.api_key, "room-1", "alice", "Alice")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "bob", "peerName": "Bob", "delta": 40000})
    for sample in range(3):
        body = {
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "data": stats_payload(sample),
            "delta": 30000 - 10000 * sample,
        }
        assert sdk.post("stats", body) == (200, "")
    sdk.post(
        "connection",
        {
            "eventName": "onconnectionstatechange",
            "peerId": ids["peer_id"],
            "connectionId": ids["connection_id"],
            "data": "disconnected",
        },
    )
    sdk.post("events/browser", {"eventName": "endCall"})
    return app.conferences.get()


def test_anonymous_is_refused(client, call):
    response = client.get("/metrics/v1/organizations")
    assert response.status_code == 401 and response.json()["error_code"] == "not_authenticated"
    assert client.get(f"/metrics/v1/conferences/{call.pk}").status_code == 401
    assert client.get("/metrics/v1/sessions?appId=x").status_code == 401
    response = client.get("/metrics/v1/dashboard")
    assert response.status_code == 302 and "/metrics/v1/dashboard/login" in response["Location"]


def test_owner_reads_with_token_and_session(owner, app, call):
    api = token_client(owner)
    organizations = api.get("/metrics/v1/organizations").json()
    assert organizations["count"] == 1 and organizations["results"][0]["name"] == "Acme"
    apps = api.get("/metrics/v1/apps").json()["results"]
    assert apps[0]["api_key"] == app.api_key
    conferences = api.get(f"/metrics/v1/conferences?appId={app.pk}").json()
    assert conferences["count"] == 1
    listed = conferences["results"][0]
    # Everyone the conference page lists: Alice (SDK) and Bob (her peer), as on the detail page.
    assert listed["participants_count"] == 2 and listed["has_warnings"] and not listed["has_errors"]
    detail = api.get(f"/metrics/v1/conferences/{call.pk}").json()["data"]
    assert {p["participant_id"] for p in detail["participants"]} == {"alice", "bob"}
    assert [i["code"] for i in detail["issues"]] == ["connection_disconnected"]
    assert detail["issues"][0]["title"] == "Connection disconnected"
    stats = api.get(f"/metrics/v1/conferences/{call.pk}/events?type=stats").json()
    assert stats["count"] == 3 and all(e["category"] == "stats" for e in stats["results"])
    others = api.get(f"/metrics/v1/conferences/{call.pk}/events?type=-stats").json()
    assert others["count"] > 0 and all(e["category"] != "stats" for e in others["results"])
    for route, count in (("participants", 2), ("sessions", 1), ("connections", 1), ("issues", 1)):
        body = api.get(f"/metrics/v1/{route}?appId={app.pk}").json()
        assert body["count"] == count, route
        item = body["results"][0]["id"]
        assert api.get(f"/metrics/v1/{route}/{item}").json()["data"]["id"] == item
    assert api.get("/metrics/v1/search?query=room").json()["data"][0]["type"] == "conference"
    assert api.get(f"/metrics/v1/search?query={app.api_key}").json()["data"] == []  # never matches keys
    # The browser: session login, same answers.
    browser = Client()
    assert browser.post("/metrics/v1/dashboard/login", {"username": "owner", "password": "pw"}).status_code == 302
    assert browser.get(f"/metrics/v1/conferences?appId={app.pk}").json()["count"] == 1
    assert browser.get("/metrics/v1/dashboard").status_code == 200


def test_graphs_serve_the_summary(owner, call):
    api = token_client(owner)
    body = api.get(f"/metrics/v1/conferences/{call.pk}/graphs").json()
    assert body["ongoing"] is False and body["building"] is False
    (connection,) = body["summary"]["connections"]
    assert len(connection["samples"]) == 3 and connection["averages"]["audio_mos"] > 4


def test_cross_tenant_reads_are_refused(app, stranger, call):
    api = token_client(stranger)
    assert api.get("/metrics/v1/organizations").json()["results"][0]["name"] == "Other"
    assert all(a["name"] == "Theirs" for a in api.get("/metrics/v1/apps").json()["results"])
    refused = {
        f"/metrics/v1/apps/{app.pk}": "app_not_found",
        f"/metrics/v1/organizations/{app.organization_id}": "organization_not_found",
        f"/metrics/v1/conferences/{call.pk}": "conference_not_found",
        f"/metrics/v1/conferences/{call.pk}/events": "conference_not_found",
        f"/metrics/v1/conferences/{call.pk}/graphs": "conference_not_found",
        f"/metrics/v1/sessions/{call.sessions.get().pk}": "session_not_found",
        f"/metrics/v1/connections/{call.connections.get().pk}": "connection_not_found",
        f"/metrics/v1/issues/{call.issues.get().pk}": "issue_not_found",
        f"/metrics/v1/participants/{call.participants.first().pk}": "participant_not_found",
        "/metrics/v1/conferences/not-a-uuid": "conference_not_found",
    }
    for url, code in refused.items():
        response = api.get(url)
        assert (response.status_code, response.json()["error_code"]) == (400, code), url
    for route in ("conferences", "participants", "sessions", "connections", "issues"):
        assert api.get(f"/metrics/v1/{route}?appId={app.pk}").json()["count"] == 0, route
    assert api.get("/metrics/v1/search?query=room").json()["data"] == []
    assert api.post(f"/metrics/v1/apps/{app.pk}/reset-key").json()["error_code"] == "app_not_found"
    assert api.put(f"/metrics/v1/apps/{app.pk}", {"name": "x"}, content_type="application/json").status_code == 400
    assert api.delete(f"/metrics/v1/organizations/{app.organization_id}").status_code == 400
    app.refresh_from_db()
    assert app.name == "Meet" and app.is_active


def test_crud_reset_key_and_pagination(owner, sdk):
    api = token_client(owner)
    organization = api.post("/metrics/v1/organizations", {"name": "New org"}, content_type="application/json").json()[
        "data"
    ]
    created = api.post(
        "/metrics/v1/apps", {"organization": organization["id"], "name": "A"}, content_type="application/json"
    )
    assert created.status_code == 201
    app = created.json()["data"]
    assert len(app["api_key"]) == 32
    assert (
        api.post("/metrics/v1/apps", {"name": "no org"}, content_type="application/json").json()["error_code"]
        == "invalid_parameters"
    )
    updated = api.put(
        f"/metrics/v1/apps/{app['id']}",
        {"domain": "meet.example.com", "recording": False},
        content_type="application/json",
    )
    assert updated.json()["data"]["recording"] is False
    new_key = api.post(f"/metrics/v1/apps/{app['id']}/reset-key").json()["api_key"]
    assert new_key != app["api_key"] and len(new_key) == 32 and new_key.isalnum() and new_key == new_key.lower()
    api.put(f"/metrics/v1/apps/{app['id']}", {"recording": True}, content_type="application/json")
    body = {"conferenceId": "c", "userId": "u", "apiKey": app["api_key"]}
    assert sdk.post("initialize", body, token=False)[1]["error_code"] == "invalid_api_key"
    assert sdk.post("initialize", {**body, "apiKey": new_key}, token=False)[0] == 200
    for index in range(5):
        api.post(
            "/metrics/v1/apps",
            {"organization": organization["id"], "name": f"app{index}"},
            content_type="application/json",
        )
    page = api.get("/metrics/v1/apps?limit=2&offset=1").json()
    assert page["count"] == 6 and len(page["results"]) == 2
    assert api.get("/metrics/v1/apps?limit=500").json()["error_code"] == "invalid_parameters"
    assert api.get("/metrics/v1/apps?limit=x").json()["error_code"] == "invalid_parameters"
    assert api.get("/metrics/v1/conferences").json()["error_code"] == "missing_parameters"
    assert api.get("/metrics/v1/conferences?appId=zzz").json()["error_code"] == "invalid_parameters"
    assert api.delete(f"/metrics/v1/apps/{app['id']}").status_code == 204
    assert api.get(f"/metrics/v1/apps/{app['id']}").json()["error_code"] == "app_not_found"
    assert sdk.post("initialize", {**body, "apiKey": new_key}, token=False)[1]["error_code"] == "invalid_api_key"


def test_stats_retention(call, settings):
    settings.METRICS_STATS_RETENTION_DAYS = 7
    GenericEvent.objects.filter(category="S").update(created_at=timezone.now() - timedelta(days=8))
    kept = GenericEvent.objects.exclude(category="S").count()
    assert stats_purge_expired() == 3
    assert GenericEvent.objects.filter(category="S").count() == 0
    assert GenericEvent.objects.count() == kept
    assert "metrics-stats-retention" in settings.CELERY_BEAT_SCHEDULE


def test_stale_conferences_are_closed_at_their_last_event(app, sdk, settings, eager_celery):
    from metrics.models import Conference
    from metrics.tasks import conferences_close_stale

    sdk.join(app.api_key, "forgotten", "zoe")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "yann"})
    assert conferences_close_stale() == 0
    conference = Conference.objects.get(conference_id="forgotten")
    last = timezone.now() - timedelta(hours=5)
    conference.events.update(created_at=last)
    Conference.objects.filter(pk=conference.pk).update(call_start=last - timedelta(minutes=10))
    assert conferences_close_stale() == 1
    conference.refresh_from_db()
    assert not conference.ongoing and conference.end_time == last
    assert conference.duration == pytest.approx(600, abs=1)
    assert conference.connections.get().end_time == last and conference.sessions.get().end_time == last
    assert "metrics-close-stale-conferences" in settings.CELERY_BEAT_SCHEDULE


def test_admin_lists_and_searches_every_model(admin_client, call):
    for model in (
        "organization",
        "app",
        "conference",
        "participant",
        "session",
        "connection",
        "track",
        "genericevent",
        "issue",
        "summary",
    ):
        response = admin_client.get(f"/admin/metrics/{model}/?q=room")
        assert response.status_code == 200, model
    assert admin_client.get(f"/admin/metrics/conference/{call.pk}/change/").status_code == 200


def test_aggregate_routes_of_one_app(owner, app, call, stranger):
    """peermetrics' summary routes (compat §6): one app, optionally a date range."""
    api = token_client(owner)
    base = "/metrics/v1"
    q = f"appId={app.pk}"
    assert api.get(f"{base}/conferences/summary").json()["error_code"] == "missing_parameters"
    days = api.get(f"{base}/conferences/summary?{q}").json()["data"]
    today = timezone.now().date().isoformat()
    assert days == [{"date": today, "success": 0, "warning": 1, "error": 0, "ongoing": 0, "total": 1}]
    durations = api.get(f"{base}/conferences/duration-summary?{q}").json()["data"]
    assert len(durations) == 12 and durations[0]["range"] == "<1 m" and durations[-1]["max_sec"] is None
    assert sum(b["count"] for b in durations) == 1
    sizes = api.get(f"{base}/conferences/participant-count-summary?{q}").json()
    assert sizes == {"data": [{"participants": 2, "conferences": 1}], "total_conferences": 1}
    sessions = api.get(f"{base}/sessions/summary?{q}").json()["data"]
    assert sessions["browsers"] == {"Chrome": 1} and set(sessions) == {"browsers", "os", "countries", "cities"}
    assert api.get(f"{base}/connections/summary?{q}").json()["data"] == {"direct": 1, "relayed": 0, "unknown": 0}
    setup = api.get(f"{base}/connections/setup-time-summary?{q}").json()["data"]
    assert len(setup) == 11 and setup[0]["range"] == "<250 ms"
    issues = api.get(f"{base}/issues/summary?{q}").json()["data"]
    assert issues == [{"code": "connection_disconnected", "title": "Connection disconnected", "count": 1}]
    assert api.get(f"{base}/issues/gum-summary?{q}").json() == {"data": [], "total": 0}
    # A date range before the call: nothing; another tenant's app: nothing either.
    before = (timezone.now() - timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert api.get(f"{base}/conferences/summary?{q}&created_at_lte={before}").json()["data"] == []
    assert token_client(stranger).get(f"{base}/conferences/summary?{q}").json()["data"] == []


def test_graphs_build_now_without_a_worker(owner, call):
    from metrics.models import Summary

    Summary.objects.all().delete()
    api = token_client(owner)
    body = api.get(f"/metrics/v1/conferences/{call.pk}/graphs?rebuild=now").json()
    assert body["building"] is False and len(body["summary"]["connections"]) == 1
