"""Reads of services and rooms. Every room read is scoped to the calling service."""

from __future__ import annotations

import logging
import time
from datetime import datetime

from django.db.models import Prefetch, QuerySet

from conference.exceptions import PermissionDenied, RoomNotFound, ServiceNotFound
from conference.models import Room, Service
from owt.crypto import UndecryptableSecret, decrypt
from owt.mauth import MAuthFailed

logger = logging.getLogger(__name__)


def service_find(*, service_id: str) -> Service | None:
    """The service with ``service_id`` or None (MAuth uses this: unknown ids are a 401, not a 404)."""
    return Service.objects.filter(id=service_id).first()


# MAuth looks the calling service up on every management request. A service's key never
# changes (only its encryption at rest), so each process keeps what it found for
# CREDENTIALS_SECONDS. A service deleted on this process is forgotten at once
# (services.service_delete); on another portal process it authenticates for at most that long,
# finding none of its rooms (they are deleted with it). Unknown ids are never remembered.
CREDENTIALS_SECONDS = 5.0
CREDENTIALS_MAX = 10_000
_credentials: dict[str, tuple[float, Service, str]] = {}


def credentials_forget(*, service_id: str) -> None:
    _credentials.pop(service_id, None)


def mauth_credentials(service_id: str) -> tuple[Service, str] | None:
    """MAuth's credential lookup (setting ``OWT_MAUTH_CREDENTIALS``): the service and its plain key."""
    now = time.monotonic()
    known = _credentials.get(service_id)
    if known is not None and now - known[0] < CREDENTIALS_SECONDS:
        return known[1], known[2]
    service = service_find(service_id=service_id)
    if service is None:
        credentials_forget(service_id=service_id)
        return None
    try:
        key = decrypt(service.key_encrypted)
    except UndecryptableSecret:
        # SECRET_KEY rotated without the old key in SECRET_KEY_FALLBACKS: the operator's fault,
        # so the log says what to fix and the caller gets MAuth's 401, not a 500.
        logger.error(
            "MAuth: the stored key of service %s decrypts under no key of SECRET_KEY or SECRET_KEY_FALLBACKS "
            "(was SECRET_KEY changed without keeping the old one in SECRET_KEY_FALLBACKS?)",
            service.id,
        )
        raise MAuthFailed("MAuth: this server cannot read the service's key") from None
    if len(_credentials) >= CREDENTIALS_MAX:
        _credentials.clear()  # only ever this many tenants calling within a few seconds
    _credentials[service_id] = (now, service, key)
    return service, key


def service_list() -> QuerySet[Service]:
    return Service.objects.order_by("created_at", "id").prefetch_related(
        Prefetch("rooms", queryset=Room.objects.only("id", "service_id").order_by("created_at", "id"))
    )


def service_get(*, caller: Service, service_id: str) -> Service:
    """A service record, readable by the super service or by the service itself."""
    if not caller.is_super and caller.id != service_id:
        raise PermissionDenied()
    service = service_list().filter(id=service_id).first()
    if service is None:
        raise ServiceNotFound()
    return service


def room_get(*, service: Service, room_id: str, with_config: bool = False) -> Room:
    """The room ``room_id`` of ``service``; another service's room is 404/1003 like an unknown one.

    Its settings (``config``) are loaded only ``with_config``: a response renders them from
    ``RoomOutput``'s cache, and most routes only need to know the room is the caller's.
    """
    rooms = Room.objects.filter(id=room_id, service=service)
    room = (rooms if with_config else rooms.defer("config")).first()
    if room is None:
        raise RoomNotFound()
    return room


def room_versions(
    *, service: Service, page: int | None = None, per_page: int | None = None
) -> list[tuple[str, datetime]]:
    """The service's rooms as ``(id, updated_at)``, oldest first: ``RoomOutput`` answers a listing
    from its renderings of those versions, loading only rooms it has not rendered yet
    (:func:`rooms_by_id`). ``per_page`` > 0 paginates (1-based ``page``)."""
    rooms = Room.objects.filter(service=service).order_by("created_at", "id").values_list("id", "updated_at")
    if per_page and per_page > 0:
        start = (max(page or 1, 1) - 1) * per_page
        rooms = rooms[start : start + per_page]
    return list(rooms)


def rooms_by_id(*, room_ids: list[str]) -> dict[str, Room]:
    """These rooms by id, in one query (a room deleted meanwhile is missing)."""
    return {room.id: room for room in Room.objects.filter(id__in=room_ids)}
