"""Rate limits and lockouts answer 429 in each API's own format, with Retry-After."""

from __future__ import annotations

import pytest

from tests.security.helpers import make_service, set_rates, signed


def assert_throttled_owt(response) -> None:
    assert response.status_code == 429
    assert response.json()["error"]["code"] == 1102
    assert int(response["Retry-After"]) >= 1


@pytest.mark.django_db
def test_each_service_has_its_own_rate(api_client, settings):
    set_rates(settings, owt_service="3/m")
    tenant, other_tenant = make_service("tenant-a"), make_service("tenant-b")
    for _ in range(3):
        assert api_client.get("/v1/rooms", **signed(tenant)).status_code == 200
    assert_throttled_owt(api_client.get("/v1/rooms", **signed(tenant)))
    assert_throttled_owt(api_client.get("/v1.1/stream-engine/participants", **signed(tenant)))
    # Another tenant is not slowed down by the first one.
    assert api_client.get("/v1/rooms", **signed(other_tenant)).status_code == 200


@pytest.mark.django_db
def test_preflights_are_not_counted(api_client, settings):
    set_rates(settings, owt_service="1/m")
    tenant = make_service("tenant-a")
    for _ in range(3):
        assert api_client.options("/v1/rooms").status_code == 200
    assert api_client.get("/v1/rooms", **signed(tenant)).status_code == 200


@pytest.mark.django_db
def test_failed_mauth_locks_the_client_address_out(api_client, settings):
    set_rates(settings, owt_mauth_failure="3/m")
    tenant = make_service("tenant-a")
    wrong_key = (tenant[0], "guessed-key")
    for _ in range(3):
        response = api_client.get("/v1/rooms", **signed(wrong_key, REMOTE_ADDR="192.0.2.1"))
        assert response.json()["error"]["code"] == 1101
    # Locked out: even the right key is not checked any more, and a forged
    # X-Forwarded-For does not make another client of it.
    assert_throttled_owt(api_client.get("/v1/rooms", **signed(tenant, REMOTE_ADDR="192.0.2.1")))
    spoofed = signed(tenant, REMOTE_ADDR="192.0.2.1", HTTP_X_FORWARDED_FOR="198.51.100.9")
    assert_throttled_owt(api_client.get("/v1/rooms", **spoofed))
    # Other addresses, and successful requests, are not affected.
    assert api_client.get("/v1/rooms", **signed(tenant, REMOTE_ADDR="192.0.2.2")).status_code == 200


@pytest.mark.django_db
def test_successful_mauth_is_not_a_failure(api_client, settings):
    set_rates(settings, owt_mauth_failure="1/m")
    tenant = make_service("tenant-a")
    for _ in range(3):
        assert api_client.get("/v1/rooms", **signed(tenant)).status_code == 200


@pytest.mark.django_db
def test_sdk_initialize_is_limited_per_address(api_client, settings):
    set_rates(settings, metrics_initialize="2/m")
    for _ in range(2):
        response = api_client.post("/metrics/v1/initialize", {"conferenceId": "c"}, format="json")
        assert response.status_code == 400
    response = api_client.post("/metrics/v1/initialize", {"conferenceId": "c"}, format="json")
    assert response.status_code == 429
    assert response.json()["error_code"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    other = api_client.post("/metrics/v1/initialize", {"conferenceId": "c"}, format="json", REMOTE_ADDR="192.0.2.5")
    assert other.status_code == 400


@pytest.mark.django_db
def test_admin_login_locks_out_after_failures(client, settings, django_user_model):
    set_rates(settings, admin_login_failure="2/h")
    django_user_model.objects.create_superuser("admin", password="right-password")
    credentials = {"username": "admin", "password": "wrong", "next": "/admin/"}
    for _ in range(2):
        response = client.post("/admin/login/", credentials)
        assert response.status_code == 200  # the form again, with an error
        assert not response.wsgi_request.user.is_authenticated
    locked = client.post("/admin/login/", {**credentials, "password": "right-password"})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) >= 1
    assert not locked.wsgi_request.user.is_authenticated
    assert client.get("/admin/login/").status_code == 200  # the page itself still shows
    elsewhere = client.post("/admin/login/", {**credentials, "password": "right-password"}, REMOTE_ADDR="192.0.2.7")
    assert elsewhere.status_code == 302


@pytest.mark.django_db
def test_admin_login_success_is_not_counted(client, settings, django_user_model):
    set_rates(settings, admin_login_failure="1/h")
    django_user_model.objects.create_superuser("admin", password="right-password")
    for _ in range(2):
        response = client.post("/admin/login/", {"username": "admin", "password": "right-password"})
        assert response.status_code == 302
        client.logout()
