"""Management API fixtures: real MAuth headers through the project's client, in-process WSGI."""

import httpx
import pytest
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections

from conference.services import service_bootstrap_super, service_create
from owt.client import ManagementClient


@pytest.fixture
def http():
    # Like Django's test client: keep the test's DB connection (and transaction) across requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=get_wsgi_application()), base_url="http://testserver") as c:
            yield c
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def make_client(db, http):
    def make(service_id: str, key: str, **kwargs) -> ManagementClient:
        return ManagementClient("http://testserver", service_id, key, http=http, **kwargs)

    return make


@pytest.fixture
def superapi(make_client):
    service, key = service_bootstrap_super()
    return make_client(service.id, key)


@pytest.fixture
def api(make_client):
    """A client of an ordinary (non-super) service."""
    service = service_create(name="tenant-a", key="tenant-a-key")
    return make_client(service.id, "tenant-a-key")


@pytest.fixture
def other_api(make_client):
    service = service_create(name="tenant-b", key="tenant-b-key")
    return make_client(service.id, "tenant-b-key")
