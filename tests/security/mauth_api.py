"""Shared by the security tests: services to call the management API as, and MAuth headers."""

from __future__ import annotations

import pytest
from django.core.cache import caches

from conference.services import service_create
from owt.mauth import build_header


@pytest.fixture(autouse=True)
def fresh_throttle_history(settings):
    """Every test starts with no requests counted (the throttle cache outlives a test)."""
    caches[settings.OWT_THROTTLE_CACHE].clear()


@pytest.fixture
def tenant(db):
    """(service id, key) of an ordinary service."""
    return service_create(name="tenant-a", key="tenant-a-key").id, "tenant-a-key"


@pytest.fixture
def other_tenant(db):
    return service_create(name="tenant-b", key="tenant-b-key").id, "tenant-b-key"


def signed(service: tuple[str, str], **extra: str) -> dict:
    """APIClient keyword arguments: a fresh MAuth header for ``service`` plus ``extra`` META."""
    service_id, key = service
    return {"HTTP_AUTHORIZATION": build_header(service_id=service_id, key=key), **extra}
