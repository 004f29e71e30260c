"""Egress API fixtures: real MAuth-signed requests through the project's EgressClient."""

from __future__ import annotations

import pytest

from conference.services import room_create, service_create
from owt.client import EgressClient
from tests.conference.conftest import http  # noqa: F401  (the in-process WSGI transport)


@pytest.fixture
def app(db):
    return service_create(name="egress-app", key="egress-app-key")


@pytest.fixture
def egress(app, http):  # noqa: F811
    return EgressClient("http://testserver", app.id, "egress-app-key", http=http)


@pytest.fixture
def other_egress(db, http):  # noqa: F811
    other = service_create(name="egress-other", key="egress-other-key")
    return EgressClient("http://testserver", other.id, "egress-other-key", http=http)


@pytest.fixture
def room(app):
    return room_create(service=app, name="egress_test")
