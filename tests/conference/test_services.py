"""Services: bootstrap, super-only routes, own-record reads, deletion rules, keys encrypted at rest."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from conference.models import Room, Service
from conference.services import service_bootstrap_super
from owt.client import OwtApiError
from owt.crypto import decrypt
from streamengine.models import Domain


def test_bootstrap_is_idempotent_and_printed(db):
    out = StringIO()
    call_command("owt_bootstrap", stdout=out)
    service, key = service_bootstrap_super()
    assert out.getvalue().splitlines() == [f"OWT super service id: {service.id}", f"OWT super service key: {key}"]
    assert service_bootstrap_super() == (service, key)
    assert Service.objects.filter(is_super=True).count() == 1
    assert len(key) == 172 and key not in service.key_encrypted
    assert decrypt(service.key_encrypted) == key


def test_super_service_manages_services(superapi, make_client):
    created = superapi.create_service("tenant", "tenant-key")
    assert set(created) == {"_id", "name", "key", "encrypted", "rooms"}
    assert created["name"] == "tenant" and created["encrypted"] is True and created["rooms"] == []
    assert created["key"] != "tenant-key" and decrypt(created["key"]) == "tenant-key"
    tenant = make_client(created["_id"], "tenant-key")
    room = tenant.create_room("r")
    assert superapi.get_service(created["_id"])["rooms"] == [room["_id"]]
    assert [s["name"] for s in superapi.list_services()] == ["superService", "tenant"]
    assert superapi.delete_service(created["_id"]) == "Service deleted"
    assert not Room.objects.filter(id=room["_id"]).exists()
    assert not Domain.objects.filter(id=room["_id"]).exists()
    with pytest.raises(OwtApiError) as info:
        superapi.get_service(created["_id"])
    assert (info.value.status, info.value.code) == (404, 1002)
    with pytest.raises(OwtApiError) as info:
        superapi.delete_service(created["_id"])
    assert (info.value.status, info.value.code) == (404, 1002)
    with pytest.raises(OwtApiError) as info:
        tenant.list_rooms()  # its key no longer authenticates
    assert (info.value.status, info.value.code) == (401, 1101)


def test_ordinary_service_is_refused_service_routes(api, other_api, superapi):
    for call in (
        api.list_services,
        lambda: api.create_service("x", "y"),
        lambda: api.get_service(other_api.service_id),
        lambda: api.delete_service(other_api.service_id),
    ):
        with pytest.raises(OwtApiError) as info:
            call()
        assert (info.value.status, info.value.code) == (403, 1102)
    assert api.get_service(api.service_id)["name"] == "tenant-a"


def test_super_service_cannot_be_deleted(superapi):
    with pytest.raises(OwtApiError) as info:
        superapi.delete_service(superapi.service_id)
    assert (info.value.status, info.value.code) == (403, 1102)
    assert "Super service" in info.value.message
    assert Service.objects.filter(id=superapi.service_id).exists()


@pytest.mark.parametrize(
    "body",
    [{"name": "x"}, {"key": "k"}, {"name": 1, "key": "k"}, {"name": "x", "key": ["k"]}, {"name": "", "key": "k"}],
)
def test_service_create_validation(superapi, body):
    with pytest.raises(OwtApiError) as info:
        superapi.request("POST", "/services", json=body)
    assert (info.value.status, info.value.code) == (400, 1301)


def test_duplicate_service_name(superapi):
    superapi.create_service("dup", "k")
    with pytest.raises(OwtApiError) as info:
        superapi.create_service("dup", "k2")
    assert (info.value.status, info.value.code) == (400, 1301)


@pytest.mark.django_db(transaction=True)
def test_concurrent_bootstraps_make_one_super_service():
    """The one-super constraint, not a check-then-insert, decides."""
    results, barrier = [], threading.Barrier(4)

    def bootstrap():
        barrier.wait()
        try:
            results.append(service_bootstrap_super())
        except Exception as exc:  # any failure must show up in the assertion
            results.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=bootstrap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({(service.id, key) for service, key in results}) == 1, results
    assert Service.objects.filter(is_super=True).count() == 1
