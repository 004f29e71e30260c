"""Health endpoint, schema, admin login, and error envelopes for requests refused before a view."""

import json

import pytest
from django.test import override_settings


@pytest.mark.django_db
def test_health_reports_every_dependency(client):
    response = client.get("/health/")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is True
    assert set(body["checks"]) == {"database", "broker", "channel_layer"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.fixture
def broken_broker(monkeypatch):
    from owt import views

    def broken():
        raise ConnectionError("broker down at 10.0.0.7")

    monkeypatch.setitem(views.CHECKS, "broker", broken)


@pytest.mark.django_db
def test_health_reports_a_broken_broker_without_details_to_anyone(client, broken_broker):
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "database": {"ok": True},
        "broker": {"ok": False},
        "channel_layer": {"ok": True},
    }


@pytest.mark.django_db
def test_health_details_for_staff(client, broken_broker, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    response = client.get("/health/")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "ConnectionError: broker down at 10.0.0.7"}
    assert response.json()["checks"]["database"]["vendor"]


@pytest.mark.django_db
def test_health_details_with_the_health_token_only(client, broken_broker, settings):
    settings.HEALTH_TOKEN = "monitor-secret"
    details = client.get("/health/", headers={"Authorization": "Bearer monitor-secret"})
    assert details.status_code == 503
    assert details.json()["checks"]["broker"]["error"] == "ConnectionError: broker down at 10.0.0.7"
    wrong = client.get("/health/", headers={"Authorization": "Bearer guess"})
    assert (wrong.status_code, wrong.json()["checks"]["broker"]) == (503, {"ok": False})


@pytest.mark.django_db
def test_schema_and_admin_login_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/admin/login/").status_code == 200


@pytest.mark.django_db
def test_unknown_owt_path_answers_in_owt_envelope(client):
    response = client.get("/v1/no-such-resource-here/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 1001, "message": "Resource not found"}}


@pytest.mark.django_db
@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1024)
def test_oversized_body_refused_in_owt_envelope(client):
    response = client.post("/v1/rooms", data=json.dumps({"name": "x" * 5000}), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == 1301
    assert "too large" in response.json()["error"]["message"]
