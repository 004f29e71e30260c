"""Shared by the security tests: services to call the management API as, MAuth headers, rates."""

from __future__ import annotations

from conference.services import service_create
from owt.mauth import build_header


def make_service(name: str) -> tuple[str, str]:
    """(id, key) of a new ordinary service."""
    key = f"{name}-key"
    return service_create(name=name, key=key).id, key


def signed(service: tuple[str, str], **extra: str) -> dict:
    """APIClient keyword arguments: a fresh MAuth header for ``service`` plus ``extra`` META."""
    service_id, key = service
    return {"HTTP_AUTHORIZATION": build_header(service_id=service_id, key=key), **extra}


def set_rates(settings, **scopes: str) -> None:
    """Set throttle rates (``scope="N/m"``) through pytest-django's ``settings`` fixture."""
    framework = settings.REST_FRAMEWORK
    settings.REST_FRAMEWORK = {**framework, "DEFAULT_THROTTLE_RATES": {**framework["DEFAULT_THROTTLE_RATES"], **scopes}}
